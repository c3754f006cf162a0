//! Runs the real `switchyard-sidecar` binary on free loopback ports with a manifest file,
//! and captures what it logs.

use std::{
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A running sidecar.
pub struct Sidecar {
    child: Child,
    /// The data-plane address.
    pub addr: SocketAddr,
    /// The admin address.
    pub admin: SocketAddr,
    /// The manifest file it watches.
    pub config: PathBuf,
    _dir: tempfile::TempDir,
    logs: Arc<Mutex<String>>,
}

/// A free loopback port.
pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

impl Sidecar {
    /// Starts `binary` on `yaml` and waits until `/readyz` answers.
    /// A port picked free can be taken before the sidecar binds it (tests run in
    /// parallel): a start that fails to listen is tried again on new ports.
    pub fn start(binary: &Path, yaml: &str, env: &[(&str, &str)]) -> Sidecar {
        let mut tries = 0;
        loop {
            match Self::try_start(binary, yaml, env) {
                Ok(sidecar) => return sidecar,
                Err(logs) if tries < 3 && logs.contains("cannot listen") => tries += 1,
                Err(logs) => panic!("sidecar did not become ready:\n{logs}"),
            }
        }
    }

    /// Like [`Sidecar::start`], returning the logs when it does not become ready.
    pub fn try_start(binary: &Path, yaml: &str, env: &[(&str, &str)]) -> Result<Sidecar, String> {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("switchyard.yaml");
        std::fs::write(&config, yaml).unwrap();
        let (addr, admin) = (free_addr(), free_addr());
        let mut cmd = Command::new(binary);
        cmd.arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string());
        cmd.env("RUST_LOG", "debug,hyper=info,hyper_util=info,rustls=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut sidecar = Sidecar {
            child,
            addr,
            admin,
            config,
            _dir: dir,
            logs,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = sidecar.child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                return Err(format!("exited with {status}:\n{}", sidecar.logs()));
            }
            if sidecar
                .admin_get("/readyz")
                .is_some_and(|(status, _)| status == 200)
            {
                return Ok(sidecar);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(sidecar.logs())
    }

    /// A data-plane URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A plain GET on the admin port: (status, body).
    pub fn admin_get(&self, path: &str) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let mut s =
            std::net::TcpStream::connect_timeout(&self.admin, Duration::from_millis(200)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    }

    /// Everything logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Replaces the manifest file (atomically, as a ConfigMap update would).
    pub fn write_config(&self, yaml: &str) {
        let tmp = self.config.with_extension("tmp");
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(&tmp, &self.config).unwrap();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(35);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
