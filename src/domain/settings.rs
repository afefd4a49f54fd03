//! Call settings: what a call type sets, what a call overrides, and what results.
//!
//! A call's effective settings are reel's defaults, overlaid by its call type's settings,
//! overlaid by the call's own `settings_override`. Both layers are [`SettingsPatch`]es: every
//! field optional, so a layer says only what it changes. The recording sections are typed and
//! validated (an unknown enum value is an error naming the field); the other sections of
//! Stream's call settings (audio, video, ring, ...) are kept as JSON objects so that clients
//! read back what they wrote.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

/// Whether a kind of recording may run, and whether it starts by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingMode {
    /// Recording may be started through the API.
    Available,
    /// Recording may not be started.
    Disabled,
    /// Recording starts when the call session starts.
    AutoOn,
}

/// Output resolution of a composite recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Quality {
    /// 640x360.
    #[serde(rename = "360p")]
    P360,
    /// 854x480.
    #[serde(rename = "480p")]
    P480,
    /// 1280x720.
    #[serde(rename = "720p")]
    P720,
    /// 1920x1080.
    #[serde(rename = "1080p")]
    P1080,
    /// 2560x1440.
    #[serde(rename = "1440p")]
    P1440,
    /// 360x640.
    #[serde(rename = "portrait-360x640")]
    Portrait360,
    /// 480x854.
    #[serde(rename = "portrait-480x854")]
    Portrait480,
    /// 720x1280.
    #[serde(rename = "portrait-720x1280")]
    Portrait720,
    /// 1080x1920.
    #[serde(rename = "portrait-1080x1920")]
    Portrait1080,
    /// 1440x2560.
    #[serde(rename = "portrait-1440x2560")]
    Portrait1440,
}

impl Quality {
    /// Width and height in pixels.
    pub fn dimensions(self) -> (u32, u32) {
        match self {
            Self::P360 => (640, 360),
            Self::P480 => (854, 480),
            Self::P720 => (1280, 720),
            Self::P1080 => (1920, 1080),
            Self::P1440 => (2560, 1440),
            Self::Portrait360 => (360, 640),
            Self::Portrait480 => (480, 854),
            Self::Portrait720 => (720, 1280),
            Self::Portrait1080 => (1080, 1920),
            Self::Portrait1440 => (1440, 2560),
        }
    }
}

/// The most bits a second a composite's video of `size` takes: 3 Mbit/s at 720p, growing
/// less than the picture's area does (about 1 Mbit/s at 360p, 5.5 at 1080p, 8.5 at 1440p).
pub fn video_bit_rate(size: (u32, u32)) -> usize {
    let pixels = f64::from(size.0) * f64::from(size.1);
    (3e6 * (pixels / (1280.0 * 720.0)).powf(0.75)) as usize
}

/// The composite layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayoutName {
    /// One large video and the others in a bar.
    Spotlight,
    /// Equal tiles.
    Grid,
    /// One video at a time.
    #[serde(alias = "single_participant")]
    SingleParticipant,
    /// The dominant speaker in portrait.
    Mobile,
    /// The page at `external_app_url`.
    Custom,
}

impl LayoutName {
    /// The name as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spotlight => "spotlight",
            Self::Grid => "grid",
            Self::SingleParticipant => "single-participant",
            Self::Mobile => "mobile",
            Self::Custom => "custom",
        }
    }
}

/// One kind of file an individual recording makes per participant session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputType {
    /// The participant's microphone.
    AudioOnly,
    /// The participant's camera.
    VideoOnly,
    /// Microphone and camera in one file.
    AudioVideo,
    /// The screen share's audio.
    ScreenshareAudioOnly,
    /// The screen share's video.
    ScreenshareVideoOnly,
    /// The screen share's audio and video in one file.
    ScreenshareAudioVideo,
}

fn non_empty_output_types<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<OutputType>>, D::Error> {
    let v = Option::<Vec<OutputType>>::deserialize(d)?;
    if v.as_ref().is_some_and(Vec::is_empty) {
        return Err(serde::de::Error::custom(
            "must name at least one output type",
        ));
    }
    Ok(v)
}

fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<String>::deserialize(d)?;
    match v.as_deref() {
        None | Some("") => Ok(v),
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(v),
        Some(_) => Err(serde::de::Error::custom(
            "must be an http:// or https:// URL",
        )),
    }
}

fn layout_options<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Map<String, Value>>, D::Error> {
    let v = Option::<Map<String, Value>>::deserialize(d)?;
    if let Some(options) = &v {
        super::layout::check_options(options).map_err(serde::de::Error::custom)?;
    }
    Ok(v)
}

/// Changes to the composite layout.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayoutPatch {
    /// The layout to draw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<LayoutName>,
    /// Layout options (flat dotted keys); merged key by key over the lower layer.
    #[serde(
        default,
        deserialize_with = "layout_options",
        skip_serializing_if = "Option::is_none"
    )]
    pub options: Option<Map<String, Value>>,
    /// A stylesheet loaded after the built-in styles; empty clears it.
    #[serde(
        default,
        deserialize_with = "http_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_css_url: Option<String>,
    /// A page that replaces the built-in layout app; empty clears it.
    #[serde(
        default,
        deserialize_with = "http_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_app_url: Option<String>,
    /// Pick landscape or portrait from the participants' videos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect_orientation: Option<bool>,
}

/// Changes to composite recording settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordingPatch {
    /// Whether composite recording may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RecordingMode>,
    /// Record one mixed audio file (MP3) instead of video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_only: Option<bool>,
    /// Output resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// Layout settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<LayoutPatch>,
}

/// Changes to individual recording settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IndividualRecordingPatch {
    /// Whether individual recording may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RecordingMode>,
    /// The files made per participant session.
    #[serde(
        default,
        deserialize_with = "non_empty_output_types",
        skip_serializing_if = "Option::is_none"
    )]
    pub output_types: Option<Vec<OutputType>>,
}

/// Changes to raw recording settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RawRecordingPatch {
    /// Whether raw recording may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RecordingMode>,
    /// Keep audio tracks only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_only: Option<bool>,
}

macro_rules! settings_patch {
    ($($section:ident),* $(,)?) => {
        /// One layer of call settings: a call type's `settings` or a call's `settings_override`.
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        pub struct SettingsPatch {
            /// Composite recording.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub recording: Option<RecordingPatch>,
            /// Individual recording.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub individual_recording: Option<IndividualRecordingPatch>,
            /// Raw recording.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub raw_recording: Option<RawRecordingPatch>,
            $(
                #[doc = concat!("The `", stringify!($section), "` section, kept as given.")]
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $section: Option<Map<String, Value>>,
            )*
        }

        impl SettingsPatch {
            /// The kept-as-given sections, by name.
            fn sections(&self) -> [(&'static str, &Option<Map<String, Value>>); 14] {
                [$((stringify!($section), &self.$section)),*]
            }

            fn sections_mut(&mut self) -> [&mut Option<Map<String, Value>>; 14] {
                [$(&mut self.$section),*]
            }
        }
    };
}

settings_patch!(
    audio,
    backstage,
    broadcasting,
    encryption,
    frame_recording,
    geofencing,
    ingress,
    limits,
    ring,
    screensharing,
    session,
    thumbnails,
    transcription,
    video,
);

/// Recursively overlays `over` onto `base`: objects merge, anything else replaces.
fn merge_json(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => merge_json(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

fn overlay<T: Clone>(base: &mut Option<T>, over: &Option<T>) {
    if over.is_some() {
        base.clone_from(over);
    }
}

fn overlay_map(base: &mut Option<Map<String, Value>>, over: &Option<Map<String, Value>>) {
    if let Some(o) = over {
        merge_json(base.get_or_insert_with(Map::new), o);
    }
}

impl SettingsPatch {
    /// Overlays `other` onto this layer, as a PATCH of stored settings does.
    pub fn merge(&mut self, other: &SettingsPatch) {
        if let Some(o) = &other.recording {
            let r = self.recording.get_or_insert_with(Default::default);
            overlay(&mut r.mode, &o.mode);
            overlay(&mut r.audio_only, &o.audio_only);
            overlay(&mut r.quality, &o.quality);
            if let Some(ol) = &o.layout {
                let l = r.layout.get_or_insert_with(Default::default);
                overlay(&mut l.name, &ol.name);
                overlay_map(&mut l.options, &ol.options);
                overlay(&mut l.external_css_url, &ol.external_css_url);
                overlay(&mut l.external_app_url, &ol.external_app_url);
                overlay(&mut l.detect_orientation, &ol.detect_orientation);
            }
        }
        if let Some(o) = &other.individual_recording {
            let r = self
                .individual_recording
                .get_or_insert_with(Default::default);
            overlay(&mut r.mode, &o.mode);
            overlay(&mut r.output_types, &o.output_types);
        }
        if let Some(o) = &other.raw_recording {
            let r = self.raw_recording.get_or_insert_with(Default::default);
            overlay(&mut r.mode, &o.mode);
            overlay(&mut r.audio_only, &o.audio_only);
        }
        for (mine, (_, theirs)) in self.sections_mut().into_iter().zip(other.sections()) {
            overlay_map(mine, theirs);
        }
    }
}

fn empty_if_none<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_deref().unwrap_or(""))
}

/// Resolved composite layout settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayoutSettings {
    /// The layout to draw.
    pub name: LayoutName,
    /// Layout options.
    pub options: Map<String, Value>,
    /// A stylesheet loaded after the built-in styles (`""` in answers when unset).
    #[serde(serialize_with = "empty_if_none")]
    pub external_css_url: Option<String>,
    /// A page that replaces the built-in layout app (`""` in answers when unset).
    #[serde(serialize_with = "empty_if_none")]
    pub external_app_url: Option<String>,
    /// Pick landscape or portrait from the participants' videos.
    pub detect_orientation: bool,
}

/// Resolved composite recording settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordSettings {
    /// Whether composite recording may run.
    pub mode: RecordingMode,
    /// Record one mixed audio file instead of video.
    pub audio_only: bool,
    /// Output resolution.
    pub quality: Quality,
    /// Layout.
    pub layout: LayoutSettings,
}

/// Resolved individual recording settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IndividualRecordingSettings {
    /// Whether individual recording may run.
    pub mode: RecordingMode,
    /// The files made per participant session.
    pub output_types: Vec<OutputType>,
}

/// Resolved raw recording settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RawRecordingSettings {
    /// Whether raw recording may run.
    pub mode: RecordingMode,
    /// Keep audio tracks only.
    pub audio_only: bool,
}

/// A call's effective settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallSettings {
    /// Composite recording.
    pub recording: RecordSettings,
    /// Individual recording.
    pub individual_recording: IndividualRecordingSettings,
    /// Raw recording.
    pub raw_recording: RawRecordingSettings,
    /// The other sections (audio, video, ring, ...), defaults overlaid by the layers.
    #[serde(flatten)]
    pub general: Map<String, Value>,
}

/// Defaults of the sections reel keeps but does not act on, shaped as the SDKs expect them.
fn general_defaults() -> Map<String, Value> {
    let layout = json!({"name": "spotlight", "external_app_url": "", "external_css_url": ""});
    let v = json!({
        "audio": {
            "access_request_enabled": false, "default_device": "speaker", "hifi_audio_enabled": false,
            "mic_default_on": true, "opus_dtx_enabled": true, "redundant_coding_enabled": true,
            "speaker_default_on": true
        },
        "backstage": {"enabled": false},
        "broadcasting": {
            "enabled": false,
            "hls": {"auto_on": false, "enabled": false, "quality_tracks": ["720p"], "layout": layout},
            "rtmp": {"enabled": false, "quality": "720p", "layout": layout}
        },
        "encryption": {"mode": "disabled"},
        "frame_recording": {"capture_interval_in_seconds": 3, "mode": "disabled"},
        "geofencing": {"names": []},
        "limits": {"max_participants_exclude_roles": []},
        "ring": {"auto_cancel_timeout_ms": 20000, "incoming_call_timeout_ms": 15000, "missed_call_timeout_ms": 15000},
        "screensharing": {"access_request_enabled": false, "enabled": true},
        "session": {"inactivity_timeout_seconds": 30},
        "thumbnails": {"enabled": false},
        "transcription": {"closed_caption_mode": "disabled", "language": "auto", "mode": "disabled"},
        "video": {
            "access_request_enabled": false, "camera_default_on": true, "camera_facing": "front",
            "enabled": true, "target_resolution": {"bitrate": 1500000, "height": 720, "width": 1280}
        }
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("the defaults literal is an object"),
    }
}

impl Default for CallSettings {
    fn default() -> Self {
        Self {
            recording: RecordSettings {
                mode: RecordingMode::Available,
                audio_only: false,
                quality: Quality::P720,
                layout: LayoutSettings {
                    name: LayoutName::Spotlight,
                    options: Map::new(),
                    external_css_url: None,
                    external_app_url: None,
                    detect_orientation: false,
                },
            },
            individual_recording: IndividualRecordingSettings {
                mode: RecordingMode::Available,
                output_types: vec![OutputType::AudioVideo, OutputType::ScreenshareAudioVideo],
            },
            raw_recording: RawRecordingSettings {
                mode: RecordingMode::Available,
                audio_only: false,
            },
            general: general_defaults(),
        }
    }
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref().filter(|s| !s.is_empty()).cloned()
}

impl CallSettings {
    /// Reel's defaults overlaid by each layer in order (call type first, then the call).
    pub fn resolve<'a>(layers: impl IntoIterator<Item = &'a SettingsPatch>) -> Self {
        let mut s = Self::default();
        for p in layers {
            s.apply(p);
        }
        s
    }

    fn apply(&mut self, p: &SettingsPatch) {
        if let Some(r) = &p.recording {
            let me = &mut self.recording;
            me.mode = r.mode.unwrap_or(me.mode);
            me.audio_only = r.audio_only.unwrap_or(me.audio_only);
            me.quality = r.quality.unwrap_or(me.quality);
            if let Some(l) = &r.layout {
                let ml = &mut me.layout;
                ml.name = l.name.unwrap_or(ml.name);
                if let Some(o) = &l.options {
                    merge_json(&mut ml.options, o);
                }
                if l.external_css_url.is_some() {
                    ml.external_css_url = non_empty(&l.external_css_url);
                }
                if l.external_app_url.is_some() {
                    ml.external_app_url = non_empty(&l.external_app_url);
                }
                ml.detect_orientation = l.detect_orientation.unwrap_or(ml.detect_orientation);
            }
        }
        if let Some(r) = &p.individual_recording {
            let me = &mut self.individual_recording;
            me.mode = r.mode.unwrap_or(me.mode);
            if let Some(t) = &r.output_types {
                me.output_types.clone_from(t);
            }
        }
        if let Some(r) = &p.raw_recording {
            let me = &mut self.raw_recording;
            me.mode = r.mode.unwrap_or(me.mode);
            me.audio_only = r.audio_only.unwrap_or(me.audio_only);
        }
        for (name, section) in p.sections() {
            let Some(section) = section else { continue };
            match self.general.get_mut(name) {
                Some(Value::Object(base)) => merge_json(base, section),
                _ => {
                    self.general
                        .insert(name.to_owned(), Value::Object(section.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(v: Value) -> SettingsPatch {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn call_override_wins_over_type() {
        let ty = patch(
            json!({"recording": {"mode": "available", "quality": "1080p"},
                              "individual_recording": {"mode": "available", "output_types": ["audio_only"]},
                              "audio": {"mic_default_on": false}}),
        );
        let call = patch(json!({"recording": {"quality": "portrait-720x1280"},
                                "individual_recording": {"output_types": ["video_only", "screenshare_audio_only"]}}));
        let s = CallSettings::resolve([&ty, &call]);
        assert_eq!(s.recording.quality, Quality::Portrait720);
        assert_eq!(s.recording.mode, RecordingMode::Available);
        assert_eq!(
            s.individual_recording.output_types,
            vec![OutputType::VideoOnly, OutputType::ScreenshareAudioOnly]
        );
        assert_eq!(s.general["audio"]["mic_default_on"], json!(false));
        assert_eq!(s.general["audio"]["speaker_default_on"], json!(true));
    }

    #[test]
    fn defaults_hold_when_absent() {
        let s = CallSettings::resolve([]);
        assert_eq!(s.recording.quality, Quality::P720);
        assert_eq!(s.recording.layout.name, LayoutName::Spotlight);
        assert_eq!(
            s.individual_recording.output_types,
            vec![OutputType::AudioVideo, OutputType::ScreenshareAudioVideo]
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["recording"]["quality"], "720p");
        assert_eq!(v["ring"]["incoming_call_timeout_ms"], 15000);
    }

    #[test]
    fn layout_options_merge_and_urls_clear() {
        let ty = patch(
            json!({"recording": {"layout": {"name": "grid", "options": {"grid.columns": 3, "video.scale_mode": "fit"},
                                                       "external_css_url": "https://x/a.css"}}}),
        );
        let call = patch(
            json!({"recording": {"layout": {"options": {"grid.columns": 4}, "external_css_url": ""}}}),
        );
        let s = CallSettings::resolve([&ty, &call]);
        assert_eq!(s.recording.layout.name, LayoutName::Grid);
        assert_eq!(s.recording.layout.options["grid.columns"], 4);
        assert_eq!(s.recording.layout.options["video.scale_mode"], "fit");
        assert_eq!(s.recording.layout.external_css_url, None);
    }

    #[test]
    fn merge_keeps_unset_fields() {
        let mut stored = patch(json!({"recording": {"mode": "disabled", "quality": "480p"}}));
        stored.merge(&patch(
            json!({"recording": {"quality": "1080p"}, "video": {"enabled": false}}),
        ));
        let r = stored.recording.as_ref().unwrap();
        assert_eq!(r.mode, Some(RecordingMode::Disabled));
        assert_eq!(r.quality, Some(Quality::P1080));
        assert_eq!(stored.video.as_ref().unwrap()["enabled"], false);
    }

    #[test]
    fn bad_values_name_the_field() {
        let cases = [
            (
                json!({"recording": {"quality": "999p"}}),
                "recording.quality",
            ),
            (
                json!({"recording": {"mode": "sometimes"}}),
                "recording.mode",
            ),
            (
                json!({"individual_recording": {"output_types": ["audio_only", "smell"]}}),
                "individual_recording.output_types",
            ),
            (
                json!({"individual_recording": {"output_types": []}}),
                "individual_recording.output_types",
            ),
            (
                json!({"recording": {"layout": {"name": "mosaic"}}}),
                "recording.layout.name",
            ),
            (
                json!({"recording": {"layout": {"external_app_url": "file:///etc/passwd"}}}),
                "recording.layout.external_app_url",
            ),
            (
                json!({"recording": {"layout": {"options": {"grid.colums": 3}}}}),
                "recording.layout.options",
            ),
            (json!({"audio": 3}), "audio"),
        ];
        for (v, field) in cases {
            let s = v.to_string();
            let de = &mut serde_json::Deserializer::from_str(&s);
            let err = serde_path_to_error::deserialize::<_, SettingsPatch>(de).unwrap_err();
            assert!(
                err.path().to_string().starts_with(field),
                "{field}: {}",
                err.path()
            );
        }
    }

    #[test]
    fn single_participant_alias() {
        let p = patch(json!({"recording": {"layout": {"name": "single_participant"}}}));
        assert_eq!(
            p.recording.unwrap().layout.unwrap().name,
            Some(LayoutName::SingleParticipant)
        );
    }
}
