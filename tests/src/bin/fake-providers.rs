//! Serves the fake OpenAI, Azure OpenAI, Anthropic and Gemini APIs on the given loopback
//! addresses until killed, for tests that drive the sidecar from other languages.
//!
//! `fake-providers openai=127.0.0.1:7001 anthropic=127.0.0.1:7002 ...`

use switchyard_tests::fake::{Api, Fake};

#[tokio::main]
async fn main() {
    let mut fakes = Vec::new();
    for arg in std::env::args().skip(1) {
        let Some((name, addr)) = arg.split_once('=') else {
            eprintln!(
                "usage: fake-providers NAME=ADDR... (NAME: openai, azure, anthropic, gemini)"
            );
            std::process::exit(2);
        };
        let api = match name {
            "openai" => Api::OpenAi,
            "azure" => Api::Azure,
            "anthropic" => Api::Anthropic,
            "gemini" => Api::Gemini,
            other => {
                eprintln!("unknown provider {other}");
                std::process::exit(2);
            }
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| {
                eprintln!("cannot listen on {addr}: {e}");
                std::process::exit(1);
            });
        fakes.push(Fake::serve(api, listener));
    }
    for f in &fakes {
        println!("{:?} {}", f.api, f.base_url());
    }
    println!("ready");
    std::future::pending::<()>().await;
}
