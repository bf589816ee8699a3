//! `sfn-mackerel`: parses the command line and hands it to the library.

use clap::Parser;
use sfn_mackerel_producer::cli::Cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    sfn_mackerel_producer::init_logging(cli.global.verbose);
    std::process::ExitCode::from(sfn_mackerel_producer::run(cli).await)
}
