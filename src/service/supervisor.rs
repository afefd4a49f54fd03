//! The recorder supervisor: runs each recording's recorder on its port and owns its life.
//!
//! For each recording it subscribes the recorder to the tracks it records, runs it in a task
//! of its own, and reads its reports: `Started` moves the recording to running (or, if a stop
//! came first, stops the recorder at once), each `FileFinished` registers the file for
//! upload, and `Finished` ends it (uploading, or failed with the files it handed over still
//! uploaded). It keeps the running recordings, stops them (one, or all at shutdown) and ends
//! them at once as a crash would.
//!
//! It also watches how far behind the bus the running recorders are: a recorder behind by
//! more than [`BEHIND`] is said so (log, `/metrics`, the call's live events), and while any
//! is, new recordings are refused rather than let the running ones fall further behind.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::{Result, ServiceError, Services};
use crate::bus::BacklogGauge;
use crate::domain::{Cid, Recording, RecordingId, RecordingState, Timestamp, Transition};
use crate::recorders::{self, Port, Recorder, RecordingJob, Report, Reporter};

/// A recorder further behind the bus than this is reported, and new recordings are refused.
pub const BEHIND: Duration = Duration::from_secs(2);
/// How often backlogs are looked at.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// The recorders this process runs.
#[derive(Default)]
pub(super) struct Supervisor {
    running: Mutex<HashMap<RecordingId, Running>>,
    /// A running recorder is further behind than [`BEHIND`].
    behind: AtomicBool,
}

/// A running recorder.
struct Running {
    cid: Cid,
    /// Asks it to finish its files and return.
    stop: CancellationToken,
    /// Pauses and resumes it.
    pause: watch::Sender<bool>,
    /// Its task and its supervising task: aborting them ends it at once (as a crash would).
    tasks: [AbortHandle; 2],
    /// How far behind the bus it is.
    backlog: BacklogGauge,
    /// Packets it had lost when last looked at.
    dropped: u64,
}

impl Supervisor {
    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<RecordingId, Running>> {
        self.running
            .lock()
            .expect("the running-recordings map is never poisoned")
    }
}

impl Services {
    fn supervisor(&self) -> &Supervisor {
        &self.inner.supervisor
    }

    /// Refuses a new recording while running ones are too far behind.
    pub(super) fn admit_recording(&self) -> Result<()> {
        if !self.supervisor().behind.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.metrics().recordings_refused.inc();
        Err(ServiceError::Unavailable(format!(
            "reel is more than {}s behind on the recordings it runs; it takes no new one until \
             they catch up",
            BEHIND.as_secs()
        )))
    }

    /// Runs `recorder` for `job` on a port of its own.
    pub(super) fn spawn_recorder(&self, job: RecordingJob, recorder: Box<dyn Recorder>) {
        let rec = job.recording.clone();
        let span = info_span!("recording", cid = %rec.cid, recording_id = %rec.id,
                              recording_type = %rec.recording_type);
        let feed = self
            .bus()
            .watch(&rec.cid, recorders::BACKLOG, recorder.tracks());
        let backlog = feed.gauge();
        let stop = CancellationToken::new();
        let (pause, paused) = watch::channel(false);
        let (reporter, reports) = Reporter::channel();
        let port = Port {
            job,
            feed,
            stop: stop.clone(),
            paused,
            reports: reporter,
        };
        // Held while both tasks start, so that the recording is known before it can end.
        let mut running = self.supervisor().running();
        let recorder = tokio::spawn(recorders::run(recorder, port).instrument(span.clone()));
        let supervising = tokio::spawn(
            self.clone()
                .supervise(rec.clone(), stop.clone(), reports)
                .instrument(span),
        );
        running.insert(
            rec.id,
            Running {
                cid: rec.cid,
                stop,
                pause,
                // The supervisor goes first: it must not take the recorder's end for a
                // failure.
                tasks: [supervising.abort_handle(), recorder.abort_handle()],
                backlog,
                dropped: 0,
            },
        );
    }

    /// Turns a recorder's reports into the recording's state, files and events.
    async fn supervise(
        self,
        rec: Recording,
        stop: CancellationToken,
        mut reports: mpsc::UnboundedReceiver<Report>,
    ) {
        let id = &rec.id;
        // What went wrong outside the recorder (a file that cannot be registered).
        let mut trouble = None;
        let outcome = loop {
            match reports.recv().await {
                Some(Report::Started) => match self.advance(id, Transition::Started, None).await {
                    Ok(RecordingState::Stopping) => stop.cancel(),
                    Ok(_) => {}
                    Err(e) => {
                        warn!(error = %e, "cannot record the start of a recorder");
                        trouble.get_or_insert(e.to_string());
                        stop.cancel();
                    }
                },
                Some(Report::FileFinished(f)) => {
                    if let Err(e) = self.add_file(&rec, f).await {
                        warn!(error = %e, "cannot register a finished file");
                        trouble.get_or_insert(e.to_string());
                    }
                }
                Some(Report::Progress(p)) => self.metrics().set_composite(id.as_str(), &p),
                Some(Report::GoesOn) => {
                    if let Err(e) = self.continue_broadcast(&rec).await {
                        warn!(error = %e, "cannot go on recording the broadcast");
                    }
                }
                Some(Report::Finished { outcome }) => break outcome.map_err(|e| e.to_string()),
                None => {
                    // Aborted with reel (as a crash ends it): the next start finishes it.
                    if !self.supervisor().running().contains_key(id) {
                        self.metrics().forget_composite(id.as_str());
                        return;
                    }
                    break Err("the recorder ended without reporting its end; what it \
                               wrote is left in its work directory"
                        .to_owned());
                }
            }
        };
        self.metrics().forget_composite(id.as_str());
        let ended = match outcome.and_then(|()| trouble.map_or(Ok(()), Err)) {
            Ok(()) => self.advance(id, Transition::RecorderFinished, None).await,
            Err(e) => {
                warn!(error = %e, "recorder failed");
                self.advance(id, Transition::Fail, Some(&e)).await
            }
        };
        match ended {
            Ok(state) => info!(%state, "recorder finished"),
            Err(e) => warn!(error = %e, "cannot record the end of a recorder"),
        }
        self.supervisor().running().remove(id);
    }

    /// Pauses (true) or resumes a recorder this process runs; false if it runs elsewhere or
    /// no longer.
    pub(super) fn pause_recorder(&self, id: &RecordingId, paused: bool) -> bool {
        self.supervisor()
            .running()
            .get(id)
            .is_some_and(|r| r.pause.send(paused).is_ok())
    }

    /// The stop signal of a recorder this process runs.
    pub(super) fn stop_signal(&self, id: &RecordingId) -> Option<CancellationToken> {
        self.supervisor().running().get(id).map(|r| r.stop.clone())
    }

    /// Asks every recorder to finish its files, and waits up to `grace` for them; the ones
    /// still running then are ended (their recordings are finished at the next start).
    pub async fn stop_recorders(&self, grace: Duration) {
        for r in self.supervisor().running().values() {
            r.stop.cancel();
        }
        let deadline = tokio::time::Instant::now() + grace;
        while !self.supervisor().running().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.abort_recorders();
    }

    /// Ends every recorder at once, as a crash would.
    pub fn abort_recorders(&self) {
        for (_, r) in self.supervisor().running().drain() {
            r.tasks.iter().for_each(AbortHandle::abort);
        }
    }

    /// Watches how far behind the bus the running recorders are until `shutdown` fires.
    pub async fn watch_recorders(self, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(LOOK_EVERY);
        while tokio::select! {
            () = shutdown.cancelled() => false,
            _ = every.tick() => true,
        } {
            self.look_at_backlogs();
        }
    }

    fn look_at_backlogs(&self) {
        let supervisor = self.supervisor();
        let mut worst = Duration::ZERO;
        let mut behind_in: Vec<(Cid, RecordingId, Duration)> = Vec::new();
        for (id, r) in supervisor.running().iter_mut() {
            let lag = r.backlog.lag();
            worst = worst.max(lag);
            if lag > BEHIND {
                behind_in.push((r.cid.clone(), id.clone(), lag));
            }
            let dropped = r.backlog.dropped();
            if dropped > r.dropped {
                warn!(cid = %r.cid, recording_id = %id, lost = dropped - r.dropped,
                      backlog = ?recorders::BACKLOG.time,
                      "a recorder lost packets: it was further behind the call than its backlog holds");
                r.dropped = dropped;
            }
        }
        self.metrics()
            .recorder_backlog_seconds
            .set(worst.as_secs_f64());
        let behind = !behind_in.is_empty();
        if supervisor.behind.swap(behind, Ordering::Relaxed) == behind {
            return;
        }
        if behind {
            warn!(
                backlog_s = worst.as_secs_f64(),
                recordings = behind_in.len(),
                "recorders are behind the calls they record; new recordings are refused until they catch up"
            );
        } else {
            info!("recorders caught up; new recordings are taken again");
        }
        for (cid, id, lag) in behind_in {
            let event = json!({
                "type": "reel.recording_behind",
                "call_cid": cid,
                "created_at": Timestamp::now(),
                "egress_id": id,
                "backlog_seconds": lag.as_secs_f64(),
            });
            self.live().publish(&cid, event.to_string().into());
        }
    }
}
