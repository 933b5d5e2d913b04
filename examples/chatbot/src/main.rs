//! Runs the chat bot scenario: the JSON log of every event, the breaker's transitions, the
//! request/response results and a summary, on stdout. Errors go to stderr, with exit code 1.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match chatbot::run(std::io::stdout()).await {
        Ok(summary) if summary.dead_letters.is_empty() => ExitCode::SUCCESS,
        Ok(summary) => {
            eprintln!(
                "error: {} deliveries were dead-lettered",
                summary.dead_letters.len()
            );
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
