//! Prometheus metrics, served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::bus::BusCounters;
use crate::domain::{RecordingState, RecordingType};

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// The matched route, e.g. `/api/v2/video/call/{type}/{id}`.
    pub route: String,
    /// HTTP status code.
    pub status: u16,
}

/// Labels of a route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The matched route.
    pub route: String,
}

/// Labels of a recording count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecordingLabels {
    /// Recording type.
    pub recording_type: String,
    /// Recording state.
    pub state: String,
}

/// Labels of an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `ok`, `failed` (will be retried) or `dead` (given up).
    pub outcome: &'static str,
}

/// Labels of one recording's figures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecordingIdLabels {
    /// The recording.
    pub recording_id: String,
}

/// How a running composite recording goes, so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CompositeProgress {
    /// Pictures captured and queued for the encoder.
    pub captured: u64,
    /// Frames that show the picture before them, because none came for them.
    pub repeated: u64,
    /// Pictures dropped because the encoder was a second behind.
    pub dropped: u64,
    /// Frames the capture was too late for.
    pub skipped: u64,
    /// How far the encoder is behind the pictures given to it.
    pub encoder_lag_seconds: f64,
    /// Audio samples that came too late for their place in the mix (audio underruns).
    pub audio_late_samples: u64,
}

type PerRecording = Family<RecordingIdLabels, Gauge>;

/// The figures of running composite recordings.
#[derive(Debug, Default)]
pub struct CompositeGauges {
    captured: PerRecording,
    repeated: PerRecording,
    dropped: PerRecording,
    skipped: PerRecording,
    encoder_lag_seconds: Family<RecordingIdLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    audio_late_samples: PerRecording,
}

impl CompositeGauges {
    fn register(&self, registry: &mut Registry) {
        for (name, help, family) in [
            (
                "composite_pictures_captured",
                "Pictures a running composite captured",
                &self.captured,
            ),
            (
                "composite_pictures_repeated",
                "Frames of a running composite that repeat the picture before",
                &self.repeated,
            ),
            (
                "composite_pictures_dropped",
                "Pictures a running composite dropped because its encoder was behind",
                &self.dropped,
            ),
            (
                "composite_pictures_skipped",
                "Frames a running composite's capture was too late for",
                &self.skipped,
            ),
            (
                "composite_audio_late_samples",
                "Audio samples that came too late for a running composite's mix",
                &self.audio_late_samples,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "composite_encoder_lag_seconds",
            "How far a running composite's encoder is behind its pictures",
            self.encoder_lag_seconds.clone(),
        );
    }
}

/// Every metric reel exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests served.
    pub requests: Family<RequestLabels, Counter>,
    /// HTTP request handling time.
    pub request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Recordings by type and state (refreshed at each scrape).
    pub recordings: Family<RecordingLabels, Gauge>,
    /// Webhook delivery attempts by outcome.
    pub webhook_deliveries: Family<OutcomeLabels, Counter>,
    /// File uploads by outcome.
    pub uploads: Family<OutcomeLabels, Counter>,
    /// Bytes uploaded to storage.
    pub upload_bytes: Counter,
    /// Packets through the media bus.
    pub bus: BusCounters,
    /// Datagrams the media plane could not hand to a peer.
    pub udp_unrouted: Counter,
    /// WebRTC sessions (WHIP and WHEP) open now.
    pub media_sessions: Gauge,
    /// How far behind the bus the furthest-behind running recorder is, in seconds.
    pub recorder_backlog_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Recordings refused because the running ones were too far behind.
    pub recordings_refused: Counter,
    /// Running composite recordings, each by its id.
    pub composites: CompositeGauges,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("reel");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests served", requests.clone());
        let request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 14)));
        registry.register(
            "http_request_duration_seconds",
            "HTTP request handling time",
            request_seconds.clone(),
        );
        let recordings = Family::<RecordingLabels, Gauge>::default();
        registry.register(
            "recordings",
            "Recordings by type and state",
            recordings.clone(),
        );
        let webhook_deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome",
            webhook_deliveries.clone(),
        );
        let uploads = Family::<OutcomeLabels, Counter>::default();
        registry.register("uploads", "File uploads by outcome", uploads.clone());
        let upload_bytes = Counter::default();
        registry.register(
            "upload_bytes",
            "Bytes uploaded to storage",
            upload_bytes.clone(),
        );
        let bus = BusCounters::default();
        registry.register(
            "bus_packets_published",
            "Packets publishers put on the media bus",
            bus.published.clone(),
        );
        registry.register(
            "bus_packets_delivered",
            "Packets the media bus queued for a subscriber",
            bus.delivered.clone(),
        );
        registry.register(
            "bus_packets_dropped",
            "Packets a slow subscriber lost because its queue was full",
            bus.dropped.clone(),
        );
        let udp_unrouted = Counter::default();
        registry.register(
            "udp_datagrams_unrouted",
            "Datagrams dropped before reaching a peer (unknown source or full queue)",
            udp_unrouted.clone(),
        );
        let media_sessions = Gauge::default();
        registry.register(
            "media_sessions",
            "WebRTC sessions open now",
            media_sessions.clone(),
        );
        let recorder_backlog_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "recorder_backlog_seconds",
            "How long the oldest packet a running recorder has not taken yet has waited",
            recorder_backlog_seconds.clone(),
        );
        let recordings_refused = Counter::default();
        registry.register(
            "recordings_refused",
            "Recordings refused because the running ones were too far behind",
            recordings_refused.clone(),
        );
        let composites = CompositeGauges::default();
        composites.register(&mut registry);
        Self {
            registry,
            composites,
            bus,
            recorder_backlog_seconds,
            recordings_refused,
            udp_unrouted,
            media_sessions,
            requests,
            request_seconds,
            recordings,
            webhook_deliveries,
            uploads,
            upload_bytes,
        }
    }
}

impl Metrics {
    /// Replaces the recording counts with `counts`; absent combinations read zero.
    pub fn set_recordings(&self, counts: &[(RecordingType, RecordingState, u64)]) {
        for t in RecordingType::ALL {
            for s in RecordingState::ALL {
                let n = counts
                    .iter()
                    .find(|(ct, cs, _)| *ct == t && *cs == s)
                    .map_or(0, |c| c.2);
                self.recordings
                    .get_or_create(&RecordingLabels {
                        recording_type: t.as_str().into(),
                        state: s.as_str().into(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }

    /// Shows `p` as the running composite `id`'s figures.
    pub fn set_composite(&self, id: &str, p: &CompositeProgress) {
        let labels = RecordingIdLabels {
            recording_id: id.to_owned(),
        };
        let c = &self.composites;
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        c.captured.get_or_create(&labels).set(count(p.captured));
        c.repeated.get_or_create(&labels).set(count(p.repeated));
        c.dropped.get_or_create(&labels).set(count(p.dropped));
        c.skipped.get_or_create(&labels).set(count(p.skipped));
        c.audio_late_samples
            .get_or_create(&labels)
            .set(count(p.audio_late_samples));
        c.encoder_lag_seconds
            .get_or_create(&labels)
            .set(p.encoder_lag_seconds);
    }

    /// Forgets the figures of composite `id`, which ended.
    pub fn forget_composite(&self, id: &str) {
        let labels = RecordingIdLabels {
            recording_id: id.to_owned(),
        };
        let c = &self.composites;
        for family in [
            &c.captured,
            &c.repeated,
            &c.dropped,
            &c.skipped,
            &c.audio_late_samples,
        ] {
            family.remove(&labels);
        }
        c.encoder_lag_seconds.remove(&labels);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
