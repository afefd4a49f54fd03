//! The `reel` command line.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::auth::Keys;
use crate::config::{Config, HumanDuration, Settings};
use crate::domain::{Role, Timestamp, UserId};
use crate::rawtools::extract::{self, Fill, Kind, Selection};
use crate::rawtools::list::{self, KindFilter, ListFormat};
use crate::rawtools::mux_av::{self, MediaFilter};
use crate::rawtools::{mix, process_all};
use crate::recorders::Recorders;
use crate::rtp::archive::{Archive, Watcher};
use crate::secret::redact_url;
use crate::server::Server;
use crate::store::{DeliveryState, Store};
use crate::telemetry::print;

/// reel: a self-hosted recording service for real-time calls and broadcasts.
#[derive(Debug, Parser)]
#[command(name = "reel", version, about, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (API, recorders, uploads, webhooks).
    ///
    /// Settings come from flags, then REEL_* environment variables, then the --config TOML file,
    /// then the embedded defaults (SQLite and recordings under ./data, API on 127.0.0.1:3000).
    /// Logs go to stderr, filtered by REEL_LOG (default info; e.g. reel=debug).
    Serve(ConfigArgs),
    /// Print a signed user token (for tests, demos and the join page).
    Token(TokenArgs),
    /// Publish a pre-encoded clip into a call as one or more participants, over WHIP.
    ///
    /// Nothing is encoded: the clip's frames are packetized as they fall due, looped, so one
    /// machine can act as many participants (demos, load tests, benchmarks). Make clips with
    /// ffmpeg, e.g.:
    ///
    ///   ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=30 -t 10 -c:v libvpx -b:v 1.1M -g 60 clip.ivf
    ///
    ///   ffmpeg -f lavfi -i sine=f=440:r=48000 -t 10 -c:a libopus -b:a 64k clip.ogg
    Publish(PublishArgs),
    /// Read raw recording archives (`.tar.gz`, `.zip` or a directory): list their tracks, and
    /// turn them into playable files.
    #[command(name = "raw-recording")]
    RawRecording {
        /// Log what each step does on stderr: segments read, packets lost and filled, moves,
        /// timings (`REEL_LOG` filters further).
        #[arg(long, short, global = true)]
        verbose: bool,
        /// What to do.
        #[command(subcommand)]
        command: RawRecordingCommand,
    },
    /// Design composite layouts: see one with synthetic participants.
    Layout {
        /// What to do.
        #[command(subcommand)]
        command: LayoutCommand,
    },
    /// Inspect and retry webhook deliveries.
    Webhooks {
        /// What to do.
        #[command(subcommand)]
        command: WebhooksCommand,
    },
}

/// Where the configuration comes from.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// A TOML file with any of the settings below (keys are the setting names with underscores).
    #[arg(long, env = "REEL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub settings: Settings,
}

impl ConfigArgs {
    /// The resolved configuration.
    pub fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(p) => Settings::from_file(p)?,
            None => Settings::default(),
        };
        Ok(Config::resolve(file.overlay(self.settings))?)
    }
}

/// `reel token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user the token acts as.
    #[arg(long)]
    pub user: String,
    /// A role for the token, overriding the user's stored role (e.g. admin).
    #[arg(long)]
    pub role: Option<String>,
    /// Lifetime, e.g. 1h or 7d; without it the token does not expire.
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<HumanDuration>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArgs,
}

/// `reel publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The WHIP endpoint, e.g. http://127.0.0.1:3000/whip/default/demo. With several
    /// participants, `{n}` in it becomes each one's number (1 to N): a call or broadcast
    /// stream each.
    pub url: reqwest::Url,
    /// The video clip: IVF (VP8, VP9 or AV1) or an H.264 Annex B stream (.h264).
    #[arg(long, value_name = "FILE", required_unless_present = "audio")]
    pub video: Option<PathBuf>,
    /// The audio clip: Ogg Opus.
    #[arg(long, value_name = "FILE")]
    pub audio: Option<PathBuf>,
    /// Frame rate of an H.264 clip (IVF files carry their own timing).
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// How many participants to publish as.
    #[arg(long, short = 'n', default_value_t = 1)]
    pub participants: usize,
    /// Time between two participants' starts.
    #[arg(long, value_name = "DURATION", default_value = "50ms")]
    pub stagger: HumanDuration,
    /// Stop after this long; without it, publish until Ctrl-C.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<HumanDuration>,
    /// A user token for every participant; with several, each publishes as its own
    /// `source_id` (p1, p2, ...) of that user. Takes precedence over --api-secret.
    #[arg(long, env = "REEL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Sign a token per participant with the API secret instead, for users <user>-1 ... <user>-N.
    #[arg(long, env = "REEL_API_SECRET", hide_env_values = true)]
    pub api_secret: Option<String>,
    /// The user id the tokens are signed for (a prefix with several participants).
    #[arg(long, default_value = "publisher")]
    pub user: String,
    /// The local address for media [default: the one that routes to the server].
    #[arg(long, value_name = "IP")]
    pub bind: Option<std::net::IpAddr>,
    /// Drop this percentage of outgoing datagrams once connected, like a lossy network.
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0,
          value_parser = percent)]
    pub loss: f64,
    /// Send audio like a sender with DTX whose speaker is silent half the time: in the
    /// second half of every 4 s, one packet per 400 ms.
    #[arg(long)]
    pub dtx: bool,
    /// Send each video frame this long after its capture, like a sender whose video takes
    /// longer to capture and encode than its audio (RTP times and sender reports keep the
    /// capture time).
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub video_delay: HumanDuration,
    /// How to print the final report.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// How a command prints its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A line for people.
    Text,
    /// One JSON object, for scripts.
    Json,
}

/// `reel raw-recording ...`.
#[derive(Debug, Subcommand)]
pub enum RawRecordingCommand {
    /// List the tracks of an archive: who, which session, which track, its kind, codec and
    /// number of segments.
    ListTracks {
        #[command(flatten)]
        #[allow(missing_docs)]
        input: InputArgs,
        /// How to print them: a table, JSON, or the distinct user, session or track ids one
        /// per line (for scripts).
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Only tracks of this kind (screen-share audio is audio).
        #[arg(long, value_enum)]
        track_type: Option<KindFilter>,
    },
    /// Write each participant session's audio to an MKV (Opus as recorded, no re-encoding),
    /// named `individual_{type}_{id}_{user}_{session}_audio_only_{call start ms}.mkv`
    /// (`shared_audio_only` for a screen share's sound).
    ExtractAudio {
        #[command(flatten)]
        #[allow(missing_docs)]
        extract: ExtractArgs,
        #[command(flatten)]
        #[allow(missing_docs)]
        dtx: DtxArgs,
    },
    /// Write each participant session's video to an MKV (as recorded, no re-encoding), named
    /// `individual_{type}_{id}_{user}_{session}_video_only_{call start ms}.mkv`
    /// (`shared_video_only` for a screen share). Between segments the last picture is held.
    ExtractVideo {
        #[command(flatten)]
        #[allow(missing_docs)]
        extract: ExtractArgs,
    },
    /// Write each participant session's audio and video into one MKV, named
    /// `individual_{type}_{id}_{user}_{session}_audio_video_{call start ms}.mkv`
    /// (`shared_audio_video` for a screen share), aligned by the sender's clock when its
    /// reports are in the archive, else by arrival.
    MuxAv {
        #[command(flatten)]
        #[allow(missing_docs)]
        extract: ExtractArgs,
        /// Which sources: camera and microphone (`user`), screen share (`display`), or both.
        #[arg(long, value_enum, default_value_t = MediaFilter::Both)]
        media: MediaFilter,
    },
    /// Do it all: extract-audio, extract-video, mux-av and mix-audio into one directory, from
    /// two passes over the archive.
    ProcessAll {
        #[command(flatten)]
        #[allow(missing_docs)]
        extract: ExtractArgs,
        #[command(flatten)]
        #[allow(missing_docs)]
        dtx: DtxArgs,
    },
    /// Mix every participant's audio into one MP3 (stereo, 48 kHz), each placed at its
    /// wall-clock start: `composite_{type}_{id}_audio_{call start ms}.mp3`.
    MixAudio {
        #[command(flatten)]
        #[allow(missing_docs)]
        input: InputArgs,
        /// The directory for the file (made if missing).
        #[arg(long, value_name = "DIR")]
        output: PathBuf,
        /// How to print what was written.
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
}

/// What the extracting commands share.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub input: InputArgs,
    /// The directory for the files (made if missing).
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub select: SelectArgs,
    /// Fill the gaps between a track's segments (silence; the last picture held).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub fill_gaps: bool,
    /// How to print what was written.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// Whether to fill audio a sender did not send.
#[derive(Debug, Args)]
pub struct DtxArgs {
    /// Fill lost packets and DTX silences inside a segment, so that the audio lasts the wall
    /// time.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub fix_dtx: bool,
}

/// Whose tracks: at most one of these (everyone's by default).
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct SelectArgs {
    /// Only this user's participant sessions.
    #[arg(long)]
    pub user_id: Option<String>,
    /// Only this participant session.
    #[arg(long)]
    pub session_id: Option<String>,
    /// Only this track's segments.
    #[arg(long)]
    pub track_id: Option<String>,
}

/// The archive a `raw-recording` command reads, and where remote ones are kept.
#[derive(Debug, Args)]
pub struct InputArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub source: InputSource,
    /// Where --input-s3 downloads are kept [default: $XDG_CACHE_HOME/reel/raw-recordings, or
    /// ~/.cache/reel/raw-recordings].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// The archive: exactly one of these.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct InputSource {
    /// A raw recording archive: `.tar.gz` (as reel and Stream make them) or `.zip`.
    #[arg(long, value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// A raw recording archive already extracted.
    #[arg(long, value_name = "DIR")]
    pub input_dir: Option<PathBuf>,
    /// A raw recording archive in S3, `s3://bucket/key` (credentials, region and endpoint from
    /// the usual AWS settings: AWS_* variables, profile files, roles; AWS_ENDPOINT_URL for
    /// S3-compatible services), or at an HTTP(S) URL such as a presigned one. Downloaded once
    /// into --cache-dir and used again while its ETag is unchanged.
    #[arg(long, value_name = "URL")]
    pub input_s3: Option<String>,
}

impl InputArgs {
    /// The archive (downloaded first if remote), opened, with a progress bar on stderr if it
    /// is a terminal.
    async fn open(&self) -> anyhow::Result<Archive> {
        let source = &self.source;
        let path = match (&source.input_file, &source.input_dir, &source.input_s3) {
            (Some(p), _, _) | (_, Some(p), _) => p.clone(),
            (_, _, Some(url)) => {
                let cache = match &self.cache_dir {
                    Some(dir) => dir.clone(),
                    None => std::env::var_os("XDG_CACHE_HOME")
                        .map(PathBuf::from)
                        .or_else(|| {
                            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache"))
                        })
                        .context("no cache directory: give --cache-dir")?
                        .join("reel/raw-recordings"),
                };
                let fetched = crate::storage::fetch_cached(url, &cache).await?;
                let how = if fetched.downloaded {
                    "downloaded to"
                } else {
                    "using the cached copy"
                };
                eprintln!(
                    "{}: {how} {}",
                    url.split('?').next().unwrap_or(url),
                    fetched.path.display()
                );
                fetched.path
            }
            _ => bail!("give --input-file, --input-dir or --input-s3"),
        };
        let mut archive = Archive::open(&path)?;
        tracing::debug!(
            archive = %path.display(),
            sessions = archive.sessions.len(),
            segments = archive.sessions.iter().map(|s| s.segments.len()).sum::<usize>(),
            "metadata and session descriptions read"
        );
        archive.watch(Arc::new(PassBar::default()));
        Ok(archive)
    }
}

/// A progress bar per pass over an archive, one line each when passes run at once (as in
/// `process-all`); drawn only on a terminal.
#[derive(Default)]
struct PassBar {
    lines: indicatif::MultiProgress,
    /// The bar of each pass under way, by the thread making it.
    bars: std::sync::Mutex<HashMap<std::thread::ThreadId, indicatif::ProgressBar>>,
    passes: std::sync::atomic::AtomicU32,
}

impl PassBar {
    fn bars(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<std::thread::ThreadId, indicatif::ProgressBar>> {
        self.bars.lock().expect("the bar lock is never poisoned")
    }
}

impl Watcher for PassBar {
    fn started(&self, total: u64) {
        let pass = self
            .passes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let bar = indicatif::ProgressBar::new(total).with_message(format!("pass {pass}"));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        let bar = self.lines.add(bar);
        self.bars().insert(std::thread::current().id(), bar);
    }

    fn read(&self, bytes: u64) {
        if let Some(bar) = self.bars().get(&std::thread::current().id()) {
            bar.inc(bytes);
        }
    }

    fn finished(&self) {
        if let Some(bar) = self.bars().remove(&std::thread::current().id()) {
            bar.finish_and_clear();
        }
    }
}

impl ExtractArgs {
    /// What to fill: gaps as asked, DTX silences if `dtx`.
    fn fill(&self, dtx: bool) -> Fill {
        Fill {
            gaps: self.fill_gaps,
            dtx,
        }
    }
}

impl SelectArgs {
    fn selection(&self) -> Selection {
        Selection {
            user_id: self.user_id.clone(),
            session_id: self.session_id.clone(),
            track_id: self.track_id.clone(),
        }
    }
}

/// `reel layout ...`.
#[derive(Debug, Subcommand)]
pub enum LayoutCommand {
    /// Serve a layout at a local URL with synthetic participants (moving test pictures with
    /// names, every fourth without video, a dominant speaker that changes every 3 s), at the
    /// size a recording of that quality has. The page reloads when --css or --options change.
    Preview(PreviewArgs),
}

/// `reel layout preview`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("render").args(["screenshot", "record"])))]
pub struct PreviewArgs {
    /// The layout: grid, spotlight, single-participant or mobile.
    #[arg(long, default_value = "spotlight", value_parser = layout_name)]
    pub layout: crate::domain::settings::LayoutName,
    /// How many synthetic participants.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub participants: u32,
    /// The first participant shares a screen.
    #[arg(long)]
    pub screenshare: bool,
    /// A stylesheet loaded after the built-in one, as `external_css_url` would be.
    #[arg(long, value_name = "FILE")]
    pub css: Option<PathBuf>,
    /// A JSON object of layout options (the API's `layout.options`).
    #[arg(long, value_name = "FILE")]
    pub options: Option<PathBuf>,
    /// The recording quality whose frame size to use: 720p, 1080p, portrait-720x1280, ...
    #[arg(long, default_value = "720p", value_parser = quality)]
    pub quality: crate::domain::settings::Quality,
    /// The local port to serve on (0: any free one).
    #[arg(long, default_value_t = 3030)]
    pub port: u16,
    /// Render one frame headless (pictures still, the first participant speaking) to this
    /// PNG and exit.
    #[arg(long, value_name = "PNG")]
    pub screenshot: Option<PathBuf>,
    /// Record the page as a composite recording captures it (Chromium on a virtual display,
    /// 30 pictures a second, H.264), to this MP4 and exit.
    #[arg(long, value_name = "MP4")]
    pub record: Option<PathBuf>,
    /// How long --record records.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        requires = "record"
    )]
    pub duration: HumanDuration,
    /// Pictures that do not move and a speaker who does not change (--screenshot always).
    #[arg(long)]
    pub still: bool,
    /// A custom layout page (`external_app_url`) to render instead of the built-in app; it
    /// gets the configuration through `window.setupLayout`. Needs --screenshot or --record.
    #[arg(long, value_name = "URL", requires = "render")]
    pub app_url: Option<String>,
    /// How long --screenshot and --record wait for the page to show
    /// #egress-ready-for-capture.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub ready_timeout: HumanDuration,
}

fn from_api_name<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|e| e.to_string())
}

fn layout_name(s: &str) -> Result<crate::domain::settings::LayoutName, String> {
    from_api_name(s)
}

fn quality(s: &str) -> Result<crate::domain::settings::Quality, String> {
    from_api_name(s)
}

/// `reel webhooks ...`.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// List deliveries that failed: still retrying, or given up after the retry period.
    Failed {
        /// At most this many, newest first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        #[allow(missing_docs)]
        config: ConfigArgs,
    },
    /// Queue given-up deliveries again (a running server sends them within 5 s).
    Retry {
        /// The delivery to retry.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Retry every given-up delivery.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        #[allow(missing_docs)]
        config: ConfigArgs,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args.resolve()?).await,
        Command::Token(args) => token(args).await,
        Command::Publish(args) => publish(args).await,
        Command::RawRecording { verbose, command } => {
            let filter = if verbose { "warn,reel=debug" } else { "warn" };
            crate::telemetry::init_filtered(crate::config::LogFormat::Text, filter);
            raw_recording(command).await
        }
        Command::Layout {
            command: LayoutCommand::Preview(args),
        } => layout_preview(args).await,
        Command::Webhooks { command } => webhooks(command).await,
    }
}

async fn layout_preview(args: PreviewArgs) -> anyhow::Result<()> {
    use crate::layout::preview::{self, Output, Preview};
    let preview = Preview {
        layout: args.layout,
        participants: args.participants,
        screenshare: args.screenshare,
        css: args.css,
        options: args.options,
        size: args.quality.dimensions(),
        app_url: args.app_url,
        still: args.still,
    };
    let output = match (&args.screenshot, &args.record) {
        (Some(png), _) => Some(Output::Screenshot(png)),
        (None, Some(mp4)) => Some(Output::Recording(mp4, args.duration.0)),
        (None, None) => None,
    };
    preview::run(preview, args.port, output, args.ready_timeout.0).await
}

async fn raw_recording(command: RawRecordingCommand) -> anyhow::Result<()> {
    match command {
        RawRecordingCommand::ListTracks {
            input,
            format,
            track_type,
        } => {
            let archive = input.open().await?;
            let tracks = list::tracks(&archive, track_type);
            print(&list::render(&tracks, format))?;
            Ok(())
        }
        RawRecordingCommand::ExtractAudio { extract, dtx } => {
            run_extract(extract, Kind::Audio, dtx.fix_dtx).await
        }
        RawRecordingCommand::ExtractVideo { extract } => {
            run_extract(extract, Kind::Video, true).await
        }
        RawRecordingCommand::ProcessAll { extract, dtx } => {
            let archive = extract.input.open().await?;
            let done = process_all::process_all(
                &archive,
                &extract.select.selection(),
                extract.fill(dtx.fix_dtx),
                &extract.output,
            )?;
            report(extract.format, &done, |d| {
                let audio_video = d.audio_video.iter().map(|f| &f.path);
                d.audio
                    .iter()
                    .chain(&d.video)
                    .map(|f| &f.path)
                    .chain(audio_video)
                    .chain(d.mix.iter().map(|m| &m.path))
                    .map(|p| p.display().to_string())
                    .collect()
            })
        }
        RawRecordingCommand::MixAudio {
            input,
            output,
            format,
        } => {
            let mixed = mix::mix_audio(&input.open().await?, &output)?;
            report(format, &mixed, |m| match m {
                Some(m) => vec![format!(
                    "{}  {:.3} s  ({} tracks, {} samples clipped)",
                    m.path.display(),
                    m.duration_s,
                    m.tracks,
                    m.clipped
                )],
                None => vec!["no audio to mix".into()],
            })
        }
        RawRecordingCommand::MuxAv { extract, media } => {
            let archive = extract.input.open().await?;
            let written = mux_av::mux_av(
                &archive,
                &extract.select.selection(),
                media,
                extract.fill(true),
                &extract.output,
            )?;
            report(extract.format, &written, |w| {
                w.iter()
                    .map(|f| {
                        format!(
                            "{}  (video moved {} ms to meet the audio)",
                            f.path.display(),
                            f.video_moved_ms
                        )
                    })
                    .collect()
            })
        }
    }
}

/// Prints `value` as one line of JSON, or as `lines` of it for people.
fn report<T: serde::Serialize>(
    format: ReportFormat,
    value: &T,
    lines: impl FnOnce(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    match format {
        ReportFormat::Json => print(&format!("{}\n", serde_json::to_string(value)?))?,
        ReportFormat::Text => print(
            &lines(value)
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
        )?,
    }
    Ok(())
}

async fn run_extract(args: ExtractArgs, kind: Kind, fix_dtx: bool) -> anyhow::Result<()> {
    let archive = args.input.open().await?;
    let selection = args.select.selection();
    let written = extract::extract(
        &archive,
        &selection,
        &[kind],
        args.fill(fix_dtx),
        &args.output,
    )?;
    report(args.format, &written, |w| {
        let what = if kind == Kind::Audio {
            "audio"
        } else {
            "video"
        };
        let mut lines: Vec<String> = w
            .iter()
            .map(|f| {
                format!(
                    "{}  {:.3} s  ({} packets, {} lost, {} filled, {} concealed)",
                    f.path.display(),
                    f.duration_s,
                    f.packets,
                    f.lost,
                    f.filled,
                    f.concealed
                )
            })
            .collect();
        if lines.is_empty() {
            lines.push(format!("no {what} to write"));
        }
        lines
    })
}

async fn serve(config: Config) -> anyhow::Result<()> {
    crate::telemetry::init(config.log_format);
    // Listen for signals before serving, so that one sent as soon as reel says it serves
    // stops it gracefully.
    let signal = shutdown_signal()?;
    let recorders = if config.composite_standby {
        Recorders::all_standing_by()
    } else {
        Recorders::all()
    };
    let server = Server::start(config, recorders)
        .await
        .context("reel could not start")?;
    server.run_until(signal).await;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url.expose();
    Store::open(url)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(url)))
}

async fn token(args: TokenArgs) -> anyhow::Result<()> {
    let user = UserId::parse(args.user)?;
    let role = args.role.map(Role::parse).transpose()?;
    let config = args.config.resolve()?;
    let keys = match &config.credentials {
        Some(c) => Keys::new(c.api_key.clone(), c.api_secret.expose()),
        None => match open_store(&config).await?.credentials().await? {
            Some((k, s)) => Keys::new(k, s),
            None => bail!(
                "this installation has no API credentials yet: start `reel serve` once, \
                 or set REEL_API_KEY and REEL_API_SECRET"
            ),
        },
    };
    print(&format!(
        "{}\n",
        keys.user_token(&user, role.as_ref(), args.ttl.map(|d| d.0))
    ))?;
    Ok(())
}

async fn publish(args: PublishArgs) -> anyhow::Result<()> {
    use crate::media::{clip, publisher};
    crate::telemetry::init(crate::config::LogFormat::Text);
    if args.participants == 0 {
        bail!("--participants must be at least 1");
    }
    let video = args
        .video
        .as_deref()
        .map(|p| clip::read_video(p, args.fps))
        .transpose()?;
    let audio = args.audio.as_deref().map(clip::read_audio).transpose()?;
    let several = args.participants > 1;
    let keys = args.api_secret.as_deref().map(|s| Keys::new("", s));
    // The URL keeps `{n}` percent-encoded in its path and raw in its query.
    let template = args.url.as_str();
    let numbered = template.contains("%7Bn%7D") || template.contains("{n}");
    let url_of = |i: usize| -> anyhow::Result<Option<reqwest::Url>> {
        if !numbered {
            return Ok(None);
        }
        let n = i.to_string();
        let url = template.replace("%7Bn%7D", &n).replace("{n}", &n);
        Ok(Some(reqwest::Url::parse(&url).context("the numbered URL")?))
    };
    let participants = (1..=args.participants)
        .map(|i| {
            Ok(match (&args.token, &keys) {
                (Some(token), _) => publisher::Identity {
                    token: token.clone(),
                    source_id: (several && !numbered).then(|| format!("p{i}")),
                    url: url_of(i)?,
                },
                (None, Some(keys)) => {
                    let user = if several {
                        UserId::parse(format!("{}-{i}", args.user))?
                    } else {
                        UserId::parse(args.user.clone())?
                    };
                    publisher::Identity {
                        token: keys.user_token(&user, None, None),
                        source_id: None,
                        url: url_of(i)?,
                    }
                }
                (None, None) => bail!(
                    "give a user token (--token or REEL_TOKEN, see `reel token`) \
                     or the API secret (--api-secret or REEL_API_SECRET)"
                ),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = publisher::PublishConfig {
        url: args.url,
        participants,
        video: video.map(Arc::new),
        audio: audio.map(Arc::new),
        stagger: args.stagger.0,
        bind: args.bind,
        loss: args.loss / 100.0,
        dtx: args.dtx,
        video_delay: args.video_delay.0,
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let signal = shutdown_signal()?;
    let duration = args.duration.map(|d| d.0);
    let trigger = stop.clone();
    tokio::spawn(async move {
        match duration {
            Some(d) => {
                tokio::select! {
                    _ = signal => {}
                    _ = tokio::time::sleep(d) => {}
                }
            }
            None => signal.await,
        }
        trigger.cancel();
    });
    let report = publisher::publish(config, stop).await;
    self::report(args.format, &report, |r| {
        let seconds = r.seconds.max(0.001);
        vec![format!(
            "{} participant(s), {} connected, {} failed: {} packets, {:.1} MB in {:.1} s ({:.2} Mbit/s)",
            r.participants,
            r.connected,
            r.failed,
            r.packets,
            r.bytes as f64 / 1e6,
            seconds,
            r.bytes as f64 * 8.0 / seconds / 1e6,
        )]
    })?;
    if report.failed > 0 {
        bail!(
            "{} participant(s) failed: {}",
            report.failed,
            report.errors.join("; ")
        );
    }
    Ok(())
}

async fn webhooks(command: WebhooksCommand) -> anyhow::Result<()> {
    match command {
        WebhooksCommand::Failed { limit, config } => {
            let store = open_store(&config.resolve()?).await?;
            let failed = store.failed_deliveries(limit).await?;
            if failed.is_empty() {
                print("no failed webhook deliveries\n")?;
            }
            for d in failed {
                let state = if d.state == DeliveryState::Dead {
                    "given up"
                } else {
                    "retrying"
                };
                print(&format!(
                    "{id}\t{state}\t{event}\t{cid}\t{endpoint}\tattempts={attempts}\tqueued={queued}\t{error}\n",
                    id = d.id,
                    event = d.event_type,
                    cid = d.ordering_key,
                    endpoint = d.endpoint,
                    attempts = d.attempts,
                    queued = d.created_at.to_rfc3339(),
                    error = d.last_error.unwrap_or_default(),
                ))?;
            }
        }
        WebhooksCommand::Retry { id, all: _, config } => {
            let store = open_store(&config.resolve()?).await?;
            let n = store.requeue_dead(id, Timestamp::now()).await?;
            print(&format!("queued {n} delivery(ies) again\n"))?;
        }
    }
    Ok(())
}

/// A percentage from 0 to 100.
fn percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a percentage from 0 to 100")),
    }
}
