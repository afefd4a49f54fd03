//! Which files a participant session gets, and their names.

use crate::domain::settings::OutputType;

/// Audio or video: the two streams a file may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    Audio,
    Video,
}

impl Kind {
    pub(super) fn of_audio(audio: bool) -> Self {
        if audio { Self::Audio } else { Self::Video }
    }
}

/// What one file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Content {
    AudioOnly,
    VideoOnly,
    AudioVideo,
}

impl Content {
    /// The kinds it holds, in stream order.
    pub(super) fn kinds(self) -> &'static [Kind] {
        match self {
            Self::AudioOnly => &[Kind::Audio],
            Self::VideoOnly => &[Kind::Video],
            Self::AudioVideo => &[Kind::Audio, Kind::Video],
        }
    }

    fn only(kind: Kind) -> Self {
        match kind {
            Kind::Audio => Self::AudioOnly,
            Kind::Video => Self::VideoOnly,
        }
    }

    /// Its name: `audio_only`, `video_only` or `audio_video`.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::AudioOnly => "audio_only",
            Self::VideoOnly => "video_only",
            Self::AudioVideo => "audio_video",
        }
    }
}

/// What `requested` asks of the camera/microphone group or of the screen-share group.
fn wanted(requested: &[OutputType], screen: bool) -> Vec<Content> {
    requested
        .iter()
        .filter_map(|t| match (t, screen) {
            (OutputType::AudioOnly, false) | (OutputType::ScreenshareAudioOnly, true) => {
                Some(Content::AudioOnly)
            }
            (OutputType::VideoOnly, false) | (OutputType::ScreenshareVideoOnly, true) => {
                Some(Content::VideoOnly)
            }
            (OutputType::AudioVideo, false) | (OutputType::ScreenshareAudioVideo, true) => {
                Some(Content::AudioVideo)
            }
            _ => None,
        })
        .collect()
}

/// The kinds of media some file of the group holds.
pub(super) fn needed_kinds(requested: &[OutputType], screen: bool) -> Vec<Kind> {
    let wanted = wanted(requested, screen);
    [Kind::Audio, Kind::Video]
        .into_iter()
        .filter(|k| wanted.iter().any(|c| c.kinds().contains(k)))
        .collect()
}

/// The files of a group whose media has the kinds in `present`. An `audio_video` request
/// with one kind missing falls back to that kind's single-stream file, so that a
/// participant with any media always gets a file.
pub(super) fn files_for(requested: &[OutputType], screen: bool, present: &[Kind]) -> Vec<Content> {
    let has = |k| present.contains(&k);
    let mut files = Vec::new();
    for c in wanted(requested, screen) {
        let file = match c {
            Content::AudioVideo if has(Kind::Audio) && has(Kind::Video) => Some(c),
            Content::AudioVideo => present.first().map(|&k| Content::only(k)),
            Content::AudioOnly => has(Kind::Audio).then_some(c),
            Content::VideoOnly => has(Kind::Video).then_some(c),
        };
        if let Some(f) = file
            && !files.contains(&f)
        {
            files.push(f);
        }
    }
    files
}

/// The file for a `kind` that began only after the group's files were opened (their streams
/// are fixed by then): its single-stream file, if asked for directly or through
/// `audio_video`.
pub(super) fn late_file(requested: &[OutputType], screen: bool, kind: Kind) -> Option<Content> {
    let only = Content::only(kind);
    wanted(requested, screen)
        .iter()
        .any(|&c| c == only || c == Content::AudioVideo)
        .then_some(only)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Content::*;
    use Kind::*;

    const DEFAULT: [OutputType; 2] = [OutputType::AudioVideo, OutputType::ScreenshareAudioVideo];

    #[test]
    fn audio_video_falls_back_to_what_there_is() {
        assert_eq!(files_for(&DEFAULT, false, &[Audio, Video]), [AudioVideo]);
        assert_eq!(files_for(&DEFAULT, false, &[Audio]), [AudioOnly]);
        assert_eq!(files_for(&DEFAULT, true, &[Video]), [VideoOnly]);
        assert!(files_for(&[OutputType::AudioVideo], true, &[Video]).is_empty());
    }

    #[test]
    fn every_type_asked_for_is_made_once() {
        let all = [
            OutputType::AudioOnly,
            OutputType::VideoOnly,
            OutputType::AudioVideo,
        ];
        assert_eq!(
            files_for(&all, false, &[Audio, Video]),
            [AudioOnly, VideoOnly, AudioVideo]
        );
        assert_eq!(files_for(&all, false, &[Audio]), [AudioOnly]);
        assert_eq!(files_for(&[OutputType::VideoOnly], false, &[Audio]), []);
    }

    #[test]
    fn only_kinds_some_file_holds_are_needed() {
        assert_eq!(needed_kinds(&DEFAULT, false), [Audio, Video]);
        assert_eq!(needed_kinds(&[OutputType::AudioOnly], false), [Audio]);
        assert!(needed_kinds(&[OutputType::AudioOnly], true).is_empty());
        let screen_audio = [OutputType::AudioOnly, OutputType::ScreenshareAudioOnly];
        assert_eq!(needed_kinds(&screen_audio, true), [Audio]);
    }

    #[test]
    fn late_kinds_get_their_own_file_when_asked_for() {
        assert_eq!(late_file(&DEFAULT, false, Video), Some(VideoOnly));
        assert_eq!(late_file(&[OutputType::AudioOnly], false, Video), None);
        assert_eq!(AudioVideo.name(), "audio_video");
    }
}
