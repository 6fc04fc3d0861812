//! Pitch-repetition packet-loss concealment for the waveform codecs (G.711, G.722), after
//! G.711 Appendix I: on the first lost frame the pitch period of the last decoded audio is
//! found by normalized correlation, and that period is repeated; the gain falls by 20 % per
//! 10 ms after the first 10 ms, so 60 ms of loss ends in silence.

/// The concealment state of one decoder at its codec's sample rate (8 kHz for G.711, 16 kHz
/// for G.722): 60 ms of history, a pitch search from 66 Hz to 400 Hz over 20 ms, 20 ms frames.
#[derive(Debug, Clone)]
pub(crate) struct PitchConcealer {
    /// Samples per millisecond.
    per_ms: usize,
    /// The last 60 ms (decoded or concealed).
    history: Vec<i16>,
    /// Consecutive concealed frames so far.
    lost_run: u32,
    /// Pitch period used for the current loss run.
    period: usize,
    /// Read position in the repeated period.
    cursor: usize,
    /// The frame [`PitchConcealer::conceal`] fills (20 ms), kept to allocate nothing per frame.
    frame: Vec<i16>,
}

impl PitchConcealer {
    /// Concealment for audio at `rate` Hz (a multiple of 1 kHz).
    pub(crate) fn new(rate: u32) -> PitchConcealer {
        let per_ms = rate as usize / 1000;
        PitchConcealer {
            per_ms,
            history: vec![0; 60 * per_ms],
            lost_run: 0,
            period: Self::pitch_max(per_ms),
            cursor: 0,
            frame: vec![0; 20 * per_ms],
        }
    }

    /// The shortest period searched (400 Hz).
    fn pitch_min(per_ms: usize) -> usize {
        per_ms * 5 / 2
    }

    /// The longest period searched (about 66 Hz).
    fn pitch_max(per_ms: usize) -> usize {
        per_ms * 15
    }

    /// Takes in decoded audio: it is what a loss repeats, and it ends a loss run.
    pub(crate) fn remember(&mut self, samples: &[i16]) {
        self.history.extend_from_slice(samples);
        let excess = self.history.len().saturating_sub(60 * self.per_ms);
        self.history.drain(..excess);
        self.lost_run = 0;
    }

    /// The lag with the best normalized correlation over the last 20 ms.
    fn find_pitch(&self) -> usize {
        let h = &self.history;
        let n = h.len();
        let window = 20 * self.per_ms;
        let max = Self::pitch_max(self.per_ms);
        let mut best = (max, f64::MIN);
        for p in Self::pitch_min(self.per_ms)..=max {
            let (mut xy, mut yy) = (0.0f64, 0.0f64);
            for i in n - window..n {
                let x = f64::from(h[i]);
                let y = f64::from(h[i - p]);
                xy += x * y;
                yy += y * y;
            }
            let score = if yy > 0.0 { xy / yy.sqrt() } else { 0.0 };
            if score > best.1 {
                best = (p, score);
            }
        }
        best.0
    }

    /// The next 20 ms in place of a lost frame, at the codec's rate.
    pub(crate) fn conceal(&mut self) -> &[i16] {
        if self.lost_run == 0 {
            self.period = self.find_pitch();
            self.cursor = 0;
        }
        let start = self.history.len() - self.period;
        let base_ms = self.lost_run as usize * 20;
        for (i, s) in self.frame.iter_mut().enumerate() {
            let ms = base_ms + i / self.per_ms;
            let gain = if ms < 10 {
                1.0
            } else {
                (1.0 - 0.2 * ((ms - 10) as f64 / 10.0)).max(0.0)
            };
            let v = f64::from(self.history[start + (self.cursor + i) % self.period]) * gain;
            *s = v as i16;
        }
        self.cursor = (self.cursor + self.frame.len()) % self.period;
        self.lost_run += 1;
        &self.frame
    }
}
