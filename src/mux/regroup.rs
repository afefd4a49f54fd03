//! Mixed audio regrouped into the frames an encoder takes: its channels (a mono encoder gets
//! the mean of a stereo mix's two) and its frame size, the samples following on from the
//! first frame's time.

use ffmpeg_next::format::Sample;
use ffmpeg_next::format::sample::Type;
use ffmpeg_next::frame;

use super::pcm::{RATE, layout};

/// Samples waiting for a whole frame.
pub(super) struct Regroup {
    planes: Vec<Vec<f32>>,
    size: usize,
    /// Samples still to be left out at the start.
    skip: usize,
    /// The time (in samples) of the next frame out, once the first frame came.
    next: Option<i64>,
}

impl Regroup {
    /// Frames of `channels` (1 or 2) and `size` samples per channel.
    pub(super) fn new(channels: usize, size: usize) -> Self {
        Self {
            planes: vec![Vec::new(); channels.clamp(1, 2)],
            size: size.max(1),
            skip: 0,
            next: None,
        }
    }

    /// Leaves out the first `n` samples (per channel) it is given; the frames after them keep
    /// the first frame's time.
    pub(super) fn skipping(mut self, n: usize) -> Self {
        self.skip = n;
        self
    }

    /// Adds `f` (planar 32-bit float); the whole frames ready now.
    pub(super) fn push(&mut self, f: &frame::Audio) -> Vec<frame::Audio> {
        if f.format() != Sample::F32(Type::Planar) {
            return Vec::new();
        }
        self.next.get_or_insert(f.pts().unwrap_or(0));
        let skip = self.skip.min(f.samples());
        self.skip -= skip;
        let n = f.samples() - skip;
        let inputs = usize::from(f.channels()).max(1);
        if let [mono] = self.planes.as_mut_slice() {
            let scale = 1.0 / inputs as f32;
            let start = mono.len();
            mono.resize(start + n, 0.0);
            for c in 0..inputs {
                for (m, s) in mono[start..]
                    .iter_mut()
                    .zip(&f.plane::<f32>(c)[skip..][..n])
                {
                    *m += s * scale;
                }
            }
        } else {
            for (c, plane) in self.planes.iter_mut().enumerate() {
                plane.extend_from_slice(&f.plane::<f32>(c.min(inputs - 1))[skip..][..n]);
            }
        }
        let mut ready = Vec::new();
        while self.planes[0].len() >= self.size {
            ready.push(self.take(self.size));
        }
        ready
    }

    /// What is left, as one shorter frame.
    pub(super) fn flush(&mut self) -> Option<frame::Audio> {
        let left = self.planes[0].len();
        (left > 0).then(|| self.take(left))
    }

    fn take(&mut self, n: usize) -> frame::Audio {
        let mut f = frame::Audio::new(Sample::F32(Type::Planar), n, layout(self.planes.len()));
        f.set_rate(RATE as u32);
        let at = self.next.unwrap_or(0);
        f.set_pts(Some(at));
        self.next = Some(at + n as i64);
        for (c, plane) in self.planes.iter_mut().enumerate() {
            f.plane_mut::<f32>(c).copy_from_slice(&plane[..n]);
            plane.drain(..n);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stereo(pts: i64, n: usize, left: f32, right: f32) -> frame::Audio {
        let mut f = frame::Audio::new(Sample::F32(Type::Planar), n, layout(2));
        f.set_pts(Some(pts));
        f.plane_mut::<f32>(0).fill(left);
        f.plane_mut::<f32>(1).fill(right);
        f
    }

    #[test]
    fn frames_of_any_size_become_the_encoder_s() {
        let mut mono = Regroup::new(1, 1152);
        let mut stereo_out = Regroup::new(2, 960);
        let (mut got_mono, mut got_stereo) = (Vec::new(), Vec::new());
        for i in 0..3 {
            let f = stereo(i * 1024, 1024, 0.5, 0.25);
            got_mono.extend(mono.push(&f));
            got_stereo.extend(stereo_out.push(&f));
        }
        got_mono.extend(mono.flush());
        got_stereo.extend(stereo_out.flush());
        let sizes = |v: &[frame::Audio]| v.iter().map(frame::Audio::samples).collect::<Vec<_>>();
        assert_eq!(sizes(&got_mono), [1152, 1152, 768]);
        assert_eq!(sizes(&got_stereo), [960, 960, 960, 192]);
        let times = |v: &[frame::Audio]| v.iter().map(|f| f.pts().unwrap()).collect::<Vec<_>>();
        assert_eq!(times(&got_mono), [0, 1152, 2304]);
        assert_eq!(times(&got_stereo), [0, 960, 1920, 2880]);
        assert!(got_mono[1].plane::<f32>(0).iter().all(|&s| s == 0.375));
        assert_eq!(got_stereo[3].plane::<f32>(1)[0], 0.25);
        assert!(mono.flush().is_none());
        // Left out at the start: the frames after keep the first one's time.
        let mut skipping = Regroup::new(2, 1024).skipping(1500);
        let mut got = Vec::new();
        for i in 0..3 {
            got.extend(skipping.push(&stereo(i * 1024, 1024, 0.5, 0.25)));
        }
        got.extend(skipping.flush());
        assert_eq!(sizes(&got), [1024, 548]);
        assert_eq!(times(&got), [0, 1024]);
    }
}
