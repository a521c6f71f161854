//! The `kiln` binary: parse the command line, run the command, render errors.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kiln::Cli::parse();
    let printer = cli.global.printer();
    match kiln::run(cli, &printer) {
        Ok(code) => code,
        Err(err) => {
            printer.error(&err);
            ExitCode::FAILURE
        }
    }
}
