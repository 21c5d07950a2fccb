//! Command-line interface.

mod audit;
mod inspect;
mod policy;
mod usage;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sluice: a self-hosted AI gateway and agentic trust plane.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(crate::serve::ServeArgs),
    /// Work with a policy directory: test, evaluate, check, run conformance suites.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Manage virtual API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Query the audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Run the content detectors: on one text, or scored on a labelled dataset.
    #[command(subcommand)]
    Inspect(inspect::InspectCommand),
    /// Show spend and what is left of every budget and rate limit of a running gateway.
    Usage(usage::UsageArgs),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print the `sha256:...` hash of a key for the `keys[].hash` field of the config. The
    /// key is read from standard input (first line), so it stays out of shell history.
    Hash,
}

fn keys(command: KeysCommand) -> ExitCode {
    match command {
        KeysCommand::Hash => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("error: cannot read the key from standard input: {e}");
                return ExitCode::FAILURE;
            }
            let key = line.trim_end_matches(['\r', '\n']);
            if key.is_empty() {
                eprintln!(
                    "error: no key on standard input (try `printf %s \"$KEY\" | sluice keys hash`)"
                );
                return ExitCode::FAILURE;
            }
            println!("{}", crate::gateway::keys::hash(key));
            ExitCode::SUCCESS
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => crate::serve::main(args),
        Command::Policy(command) => policy::main(command),
        Command::Keys(command) => keys(command),
        Command::Audit(command) => audit::main(command),
        Command::Inspect(command) => inspect::main(command),
        Command::Usage(args) => usage::main(args),
    }
}
