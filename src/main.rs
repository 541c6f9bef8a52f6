//! The `picojoule` binary: parse arguments, run the command, map errors to exit codes
//! (0 ok, 1 internal error, 2 bad input).

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match picojoule::cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let mut stdout = std::io::stdout().lock();
    match picojoule::cli::dispatch(cli, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("picojoule: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
