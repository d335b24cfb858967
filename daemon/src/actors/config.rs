//! ConfigActor: holds the configuration file's path and the last valid configuration loaded
//! from it.

use crate::config::{self, Config};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Messages to the ConfigActor.
#[derive(Debug)]
pub enum ConfigMsg {
    /// The configuration in force.
    Get(RpcReplyPort<Box<Config>>),
    /// Loads and validates the file again; replies with the new configuration or the errors.
    /// The configuration in force is replaced only when the file is valid.
    Load(RpcReplyPort<Result<Box<Config>, String>>),
    /// Records the configuration now in force (after a runtime change).
    Replace(Box<Config>),
}

/// Spawn arguments.
#[derive(Debug)]
pub struct ConfigArgs {
    /// The file, if the daemon was started from one.
    pub path: Option<PathBuf>,
    /// The configuration already loaded at start.
    pub initial: Config,
    /// Where to send reloads when the file changes on disk.
    pub root: Option<ActorRef<crate::vocab::RootMsg>>,
}

/// The actor's state.
#[derive(Debug)]
pub struct ConfigState {
    path: Option<PathBuf>,
    current: Config,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

/// How often the file is looked at.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// What identifies one version of the file (device, inode, size, modification time).
type Fingerprint = (u64, u64, u64, i64, i64);

/// What identifies one version of the file: a save by rename changes the inode, an in-place
/// write changes the size or modification time.
fn fingerprint(path: &Path) -> Option<Fingerprint> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// The versions of configuration files that this process wrote itself (`--save`), by path.
/// They hold the configuration already in force: reloading one would be a no-op at best, and
/// would undo changes made without `--save` since it was written at worst.
static OWN_WRITES: std::sync::Mutex<Vec<(PathBuf, Fingerprint)>> =
    std::sync::Mutex::new(Vec::new());

/// Records that the daemon has just written the configuration file at `path` itself, so the
/// watcher does not reload that version of it.
pub fn note_own_write(path: &Path) {
    let Some(fp) = fingerprint(path) else { return };
    let mut own = OWN_WRITES.lock().unwrap_or_else(|e| e.into_inner());
    own.retain(|(p, _)| p != path);
    own.push((path.to_path_buf(), fp));
}

/// Whether `fp` is the version of `path` that the daemon wrote last.
fn is_own_write(path: &Path, fp: Fingerprint) -> bool {
    let own = OWN_WRITES.lock().unwrap_or_else(|e| e.into_inner());
    own.iter().any(|(p, f)| p == path && *f == fp)
}

/// Polls the file and asks the root to reload once a change has settled (two looks in a row
/// agree), so an editor's several writes make one reload. Polling needs no platform watcher
/// and sees saves by rename the same as in-place writes.
async fn watch(path: PathBuf, root: ActorRef<crate::vocab::RootMsg>) {
    let mut applied = fingerprint(&path);
    let mut seen = applied;
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let now = fingerprint(&path);
        if now != seen {
            // Still changing (or just changed): wait for it to settle.
            seen = now;
            continue;
        }
        if now.is_some() && now != applied {
            applied = now;
            if now.is_some_and(|fp| is_own_write(&path, fp)) {
                tracing::debug!(file = %path.display(), "configuration file saved by us; not reloading");
                continue;
            }
            tracing::info!(file = %path.display(), "configuration file changed; reloading");
            let r = ractor::call_t!(
                root,
                crate::vocab::RootMsg::Reload,
                crate::vocab::APPLY_TIMEOUT_MS
            );
            if let Err(e) = r {
                tracing::warn!(error = %e, "reload after file change failed");
            }
        }
    }
}

/// The actor.
#[derive(Debug, Default)]
pub struct ConfigActor;

impl Actor for ConfigActor {
    type Msg = ConfigMsg;
    type State = ConfigState;
    type Arguments = ConfigArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: ConfigArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let watcher = match (&args.path, args.root) {
            (Some(p), Some(root)) => Some(tokio::spawn(watch(p.clone(), root))),
            _ => None,
        };
        Ok(ConfigState {
            path: args.path,
            current: args.initial,
            watcher,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(w) = st.watcher.take() {
            w.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ConfigMsg::Get(reply) => {
                let _ = reply.send(Box::new(st.current.clone()));
            }
            ConfigMsg::Load(reply) => {
                let r = match &st.path {
                    None => Err("the daemon was not started from a configuration file".into()),
                    Some(p) => match config::load(p) {
                        Ok(c) => {
                            for w in &c.warnings {
                                tracing::warn!("{w}");
                            }
                            Ok(Box::new(c))
                        }
                        Err(e) => Err(e.to_string()),
                    },
                };
                let _ = reply.send(r);
            }
            ConfigMsg::Replace(c) => st.current = *c,
        }
        Ok(())
    }
}
