//! `dmfilemapd`: everything is in the library; [`dmfilemapd::run`] parses
//! the arguments, decides the process's role and plays it.

fn main() -> std::process::ExitCode {
    dmfilemapd::run()
}
