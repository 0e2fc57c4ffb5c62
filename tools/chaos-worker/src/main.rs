//! The process `cargo xtask chaos` kills at random moments.
//!
//! - `chaos-worker prepare --dir D`: put the app's own files into a device's local root.
//! - `chaos-worker run --role author --dir D --journal J --seed S <remote>`: save (every
//!   upload path, new and reused ids), delete (often during the upload), log out
//!   (`clear_queue`) while the queue syncs, journaling each step (`journal.rs`).
//! - `chaos-worker run --role reader --dir D --author-dir A --seed S <remote>`: a second
//!   device that references what the author's table references and downloads it.
//! - `chaos-worker verify --dir D --journal J [--reader-dir D2] <remote>`: let each queue
//!   drain, check tables, local files and the remote against the journal (`verify.rs`), print
//!   `devices=<n> attachments=<n> lost=<n> corrupt=<n> stuck=<n> leftovers=<n>`.
//!
//! `<remote>` is `--remote-dir R` for a directory, or `--s3-prefix P` for the S3 server named
//! by `ATTACHMENTS_TEST_S3_*`.

mod content;
mod device;
mod journal;
mod run;
mod verify;

use std::path::PathBuf;

use attachments::BoxError;

use crate::device::Remote;

struct Args {
    command: String,
    role: String,
    dir: PathBuf,
    author_dir: Option<PathBuf>,
    reader_dir: Option<PathBuf>,
    journal: PathBuf,
    seed: u64,
    remote: Option<Remote>,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = std::env::args().skip(1);
    let command = args
        .next()
        .ok_or("usage: chaos-worker prepare|run|verify --dir D ...")?;
    let mut parsed = Args {
        command,
        role: "author".to_owned(),
        dir: PathBuf::new(),
        author_dir: None,
        reader_dir: None,
        journal: PathBuf::new(),
        seed: 1,
        remote: None,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--role" => parsed.role = value,
            "--dir" => parsed.dir = value.into(),
            "--author-dir" => parsed.author_dir = Some(value.into()),
            "--reader-dir" => parsed.reader_dir = Some(value.into()),
            "--journal" => parsed.journal = value.into(),
            "--seed" => parsed.seed = value.parse()?,
            "--remote-dir" => parsed.remote = Some(Remote::Directory(value.into())),
            "--s3-prefix" => parsed.remote = Some(Remote::S3 { prefix: value }),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(parsed)
}

/// xorshift64*: a seeded, dependency-free source of choices, so a seed repeats a run's steps.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

async fn dispatch(args: Args) -> Result<bool, BoxError> {
    if args.command == "prepare" {
        device::prepare(&args.dir)?;
        return Ok(true);
    }
    let remote = args
        .remote
        .as_ref()
        .ok_or("--remote-dir or --s3-prefix is required")?;
    match (args.command.as_str(), args.role.as_str()) {
        ("run", "author") => run::author(&args.dir, &args.journal, remote, args.seed)
            .await
            .map(|()| true),
        ("run", "reader") => {
            let author = args
                .author_dir
                .as_ref()
                .ok_or("a reader needs --author-dir")?;
            run::reader(&args.dir, author, remote).await.map(|()| true)
        }
        ("verify", _) => {
            verify::verify(&args.dir, args.reader_dir.as_deref(), &args.journal, remote).await
        }
        (command, role) => Err(format!("unknown command {command} (role {role})").into()),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let result = match parse_args() {
        Ok(args) => dispatch(args).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("chaos-worker: {error}");
            std::process::ExitCode::from(2)
        }
    }
}
