//! The process: parse the arguments, decide the process's role once, and
//! play it. `main.rs` only calls [`run`].
//!
//! Owns: [`Role`] and the short functions that play one each. Touches:
//! the start-up checks in [`super::start`], the loop in [`crate::daemon`],
//! process plumbing in [`crate::sys`].

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::IntoRawFd;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use super::cli::{self, Args, Command, MapArgs, UnmapArgs, UsageError};
use super::map as mapcmd;
use super::start::{self, Prepared};
use super::Error;
use crate::daemon::source::FileSource;
use crate::daemon::Daemon;
use crate::engine::map::Created;
use crate::{error, info, log, sys};

/// What this process is for, decided once from the arguments and the
/// environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// `foreground` set: check, then run the loop in this process.
    Foreground,
    /// What dmstats starts: check, start a detached copy, exit 0.
    Launcher,
    /// The detached copy the launcher started: detach, then run the loop.
    Detached,
}

impl Role {
    fn of(args: &Args) -> Role {
        if std::env::var_os(sys::DETACHED_ENV).is_some() {
            Role::Detached
        } else if args.foreground {
            Role::Foreground
        } else {
            Role::Launcher
        }
    }
}

/// The whole process: what `main` returns.
pub fn run() -> ExitCode {
    log::detect_journal();
    let args = match cli::parse(std::env::args_os()) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => return print(cli::HELP),
        Ok(Command::Map(m)) => return exit(map(&m)),
        Ok(Command::Unmap(u)) => return exit(unmap(&u)),
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
    exit(match Role::of(&args) {
        Role::Foreground => foreground(&args),
        Role::Launcher => launcher(&args),
        Role::Detached => detached(&args),
    })
}

fn exit(played: Result<(), Error>) -> ExitCode {
    match played {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("dmfilemapd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `map`: make the group as dmstats does, print dmstats' line, then follow
/// the group as the positional form does: a launcher (its detached copy
/// gets the positional arguments) or, with `--foreground`, the loop here.
/// Should following fail to start, the group is deleted again.
fn map(m: &MapArgs) -> Result<(), Error> {
    log::set_verbose(m.verbose);
    // A stop while regions are made undoes them, rather than killing us
    // with half a group made.
    sys::block_stop_signals().map_err(|e| Error::io("sigprocmask", e))?;
    let mapped = mapcmd::map_file(m, &|| sys::stop_signal().is_some())?;
    let Created { group_id, regions } = mapped.created;
    // The path as given, byte for byte, as dmstats prints it.
    let mut line = m.file.as_os_str().as_bytes().to_vec();
    line.extend_from_slice(
        format!(": Created new group with {regions} region(s) as group ID {group_id}.").as_bytes(),
    );
    let args = Args {
        fd: mapped.fd.into_raw_fd(),
        group_id,
        path: mapped.path,
        mode: m.mode,
        foreground: m.foreground,
        verbose: m.verbose,
    };
    // The checks again, by the positional form's own code: what follows
    // the group is exactly what dmstats would have started.
    let started = if m.foreground {
        starting(&args).and_then(|()| start::prepare(&args, false).map(Some))
    } else {
        launcher(&args).map(|()| None)
    };
    match started {
        Ok(prepared) => {
            say(&line);
            match prepared {
                Some(prepared) => follow(&args, prepared),
                None => Ok(()),
            }
        }
        Err(e) => {
            if let Err(undo) = mapcmd::delete(mapped.dev, group_id) {
                error!("dmfilemapd: {undo}");
            }
            Err(e)
        }
    }
}

/// `unmap`: delete the group. Stop signals wait until it is gone.
fn unmap(u: &UnmapArgs) -> Result<(), Error> {
    log::set_verbose(u.verbose);
    sys::block_stop_signals().map_err(|e| Error::io("sigprocmask", e))?;
    let (id, done) = mapcmd::unmap(u)?;
    info!(
        "{}: Deleted group {id} ({} regions, {} messages).",
        mapcmd::shown(&u.target),
        done.regions,
        done.messages
    );
    Ok(())
}

/// A line on stdout, flushed (a pipe must see it before the loop starts).
fn say(line: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
}

/// Check, then run the loop here.
fn foreground(args: &Args) -> Result<(), Error> {
    // From the start, so a stop during the checks is still a clean exit
    // 0 at the first cycle, not death by the default action.
    sys::block_stop_signals().map_err(|e| Error::io("sigprocmask", e))?;
    starting(args)?;
    follow(args, start::prepare(args, false)?)
}

/// Check, then leave the loop to a detached copy of ourselves, which gets
/// the checked fd and the same arguments.
fn launcher(args: &Args) -> Result<(), Error> {
    starting(args)?;
    let prepared = start::prepare(args, false)?;
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
    let pid = sys::spawn_detached(argv0, &child_args).map_err(|e| Error::io("spawn", e))?;
    if args.verbose >= 1 {
        // C prints this on stderr too.
        error!("Started dmfilemapd with pid={pid}");
    }
    Ok(())
}

/// The launcher's copy: detach, check what can still be checked, run.
fn detached(args: &Args) -> Result<(), Error> {
    sys::block_stop_signals().map_err(|e| Error::io("sigprocmask", e))?;
    if args.verbose == 0 {
        // stdio goes to /dev/null: what goes wrong from here on is logged.
        log::use_syslog();
    }
    sys::detach(args.verbose == 0, args.fd).map_err(|e| Error::io("detach", e))?;
    follow(args, start::prepare(args, true)?)
}

/// What the foreground and the launcher say first, and the fds they drop.
fn starting(args: &Args) -> Result<(), Error> {
    info!(
        "Starting dmfilemapd with fd={}, group_id={} mode={}, path={}",
        args.fd,
        args.group_id,
        args.mode,
        mapcmd::shown(&args.path)
    );
    // Whatever else the caller left open is not ours to keep.
    sys::close_stray_fds(args.fd).map_err(|e| Error::io("/proc/self/fd", e))
}

/// The loop, on the checked file and group.
fn follow(args: &Args, prepared: Prepared) -> Result<(), Error> {
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
