use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use dmfilemapd::cli::{self, Args, Command, UsageError};
use dmfilemapd::daemon::{self, Daemon, FileSource};
use dmfilemapd::{error, info, log, sys};

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args_os()) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => return print(cli::HELP),
        Ok(Command::Version) => return print(&format!("dmfilemapd {}", env!("CARGO_PKG_VERSION"))),
        Err(UsageError::WrongCount) => {
            error!("{}", UsageError::WrongCount);
            error!("{}", cli::USAGE);
            return ExitCode::FAILURE;
        }
        Err(e) => {
            error!("dmfilemapd: {e}");
            return ExitCode::FAILURE;
        }
    };
    log::set_verbose(args.verbose);
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("dmfilemapd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), dmfilemapd::Error> {
    let detached = std::env::var_os(sys::DETACHED_ENV).is_some();
    if args.foreground || detached {
        // From the start, so a stop during the checks is still a clean exit
        // 0 at the first cycle, not death by the default action.
        sys::block_stop_signals().map_err(|e| dmfilemapd::Error::io("sigprocmask", e))?;
    }
    if detached && args.verbose == 0 {
        // stdio goes to /dev/null: what goes wrong from here on is logged.
        log::use_syslog();
    }
    if detached {
        sys::detach(args.verbose == 0, args.fd).map_err(|e| dmfilemapd::Error::io("detach", e))?;
    } else {
        info!(
            "Starting dmfilemapd with fd={}, group_id={} mode={}, path={}",
            args.fd,
            args.group_id,
            args.mode,
            args.path.display()
        );
        // Whatever else the caller left open is not ours to keep.
        sys::close_stray_fds(args.fd).map_err(|e| dmfilemapd::Error::io("/proc/self/fd", e))?;
    }

    let prepared = daemon::prepare(args, detached)?;

    if !args.foreground && !detached {
        let argv0 = std::env::args_os()
            .next()
            .unwrap_or_else(|| "dmfilemapd".into());
        let child_args: [OsString; 6] = [
            sys::raw(&prepared.fd).to_string().into(),
            args.group_id.to_string().into(),
            args.path.clone().into_os_string(),
            args.mode.as_str().into(),
            "0".into(),
            args.verbose.to_string().into(),
        ];
        let pid = sys::spawn_detached(argv0, &child_args)
            .map_err(|e| dmfilemapd::Error::io("spawn", e))?;
        if args.verbose >= 1 {
            // C prints this on stderr too.
            error!("Started dmfilemapd with pid={pid}");
        }
        return Ok(());
    }

    let file = FileSource::new(args.mode, args.path.clone(), prepared.fd)?;
    let mut daemon = Daemon::new(prepared.engine, file);
    let stop = || sys::stop_signal().is_some();
    daemon.run(&stop)?;
    Ok(())
}

fn print(text: &str) -> ExitCode {
    match writeln!(std::io::stdout(), "{text}") {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
