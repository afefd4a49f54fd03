//! The `reel` binary: parses the command line and runs it.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = reel::cli::Cli::parse();
    match reel::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", explained(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// `e` and its causes, each after a colon, but a cause its error already ends with (most
/// of reel's errors name their cause) once only.
fn explained(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.is_empty() {
            text = cause;
        } else if !text.ends_with(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}
