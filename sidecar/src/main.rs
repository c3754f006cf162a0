//! `switchyard-sidecar`: parse flags, set up logging, run until SIGTERM or Ctrl-C.

#![cfg_attr(not(test), deny(clippy::too_many_lines))]

use clap::Parser;
use switchyard_sidecar::{run, Settings};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("wait-ready") {
        return wait_ready();
    }
    let settings = Settings::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match runtime(settings.workers) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchyard-sidecar: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings, shutdown_signal())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The async runtime: one thread, or a pool of `workers` (`0`: one per core).
fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match workers {
        1 => tokio::runtime::Builder::new_current_thread(),
        0 => tokio::runtime::Builder::new_multi_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    builder.enable_all().build()
}

/// `switchyard-sidecar wait-ready`: the start-up hook of an injected pod on servers without
/// native sidecars. Polls the admin port's `/readyz` (`SWITCHYARD_ADMIN_LISTEN`, port 4001 by
/// default) until it answers 200, for up to two minutes, so the app starts after the sidecar.
fn wait_ready() -> std::process::ExitCode {
    use std::io::{Read, Write};
    let admin = std::env::var("SWITCHYARD_ADMIN_LISTEN")
        .unwrap_or_else(|_| switchyard_sidecar::settings::DEFAULT_ADMIN_LISTEN.into());
    let port: u16 = admin
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(4001);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let mut answer = [0u8; 12];
            let asked = s
                .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .is_ok();
            if asked && s.read_exact(&mut answer).is_ok() && answer.ends_with(b"200") {
                return std::process::ExitCode::SUCCESS;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    eprintln!("switchyard-sidecar wait-ready: the sidecar on port {port} did not become ready");
    std::process::ExitCode::FAILURE
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use tokio::runtime::RuntimeFlavor;

    #[test]
    fn one_worker_is_a_single_thread_and_more_are_a_pool() {
        let flavor = |n| {
            super::runtime(n)
                .map(|rt| rt.handle().runtime_flavor())
                .ok()
        };
        assert_eq!(flavor(1), Some(RuntimeFlavor::CurrentThread));
        assert_eq!(flavor(2), Some(RuntimeFlavor::MultiThread));
        assert_eq!(flavor(0), Some(RuntimeFlavor::MultiThread));
    }
}
