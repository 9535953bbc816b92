//! Streaming rational-ratio resampler: polyphase Kaiser-windowed sinc, ~80 dB stopband.
//!
//! Used for 24 kHz → 16 kHz (recogniser input) and 22050 Hz → 24 kHz (eSpeak NG output). The cutoff
//! sits just below the lower of the two Nyquist rates so nothing aliases into the output band.

/// Stopband attenuation the kernel is designed for, in dB.
const ATTENUATION_DB: f64 = 80.0;
/// Passband edge as a fraction of the lower Nyquist rate; the transition band ends at Nyquist.
const PASS_EDGE: f64 = 0.86;

/// Converts a continuous stream from one sample rate to another.
pub struct Resampler {
    /// Upsampling factor L and downsampling factor M (reduced ratio out/in = L/M).
    up: u64,
    down: u64,
    /// Taps each side of the centre, in input samples.
    half: usize,
    /// `up` phases × `2 * half` coefficients.
    table: Vec<f32>,
    /// Input history; `buf[0]` is absolute input sample `buf_start` (negative = zero padding).
    buf: Vec<f32>,
    buf_start: i64,
    /// Next output sample to produce.
    next_out: u64,
    /// Input samples taken so far (to size the flushed tail exactly).
    taken: u64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Zeroth-order modified Bessel function of the first kind (for the Kaiser window).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..64 {
        term *= q / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

impl Resampler {
    /// A resampler from `rate_in` Hz to `rate_out` Hz (both non-zero).
    pub fn new(rate_in: u32, rate_out: u32) -> Self {
        let (fin, fout) = (u64::from(rate_in.max(1)), u64::from(rate_out.max(1)));
        let g = gcd(fin, fout);
        let (up, down) = (fout / g, fin / g);
        let nyq = fin.min(fout) as f64 / 2.0;
        // Normalised to the input rate.
        let transition = nyq * (1.0 - PASS_EDGE) / fin as f64;
        let cutoff = nyq * (1.0 + PASS_EDGE) / 2.0 / fin as f64;
        let taps =
            ((ATTENUATION_DB - 7.95) / (2.285 * 2.0 * std::f64::consts::PI * transition)).ceil();
        let half = ((taps / 2.0).ceil() as usize).max(2);
        let beta = 0.1102 * (ATTENUATION_DB - 8.7);
        let i0_beta = bessel_i0(beta);
        let width = 2 * half;
        let mut table = vec![0f32; up as usize * width];
        for p in 0..up as usize {
            let frac = p as f64 / up as f64;
            for (j, c) in table[p * width..(p + 1) * width].iter_mut().enumerate() {
                // Tap j multiplies input sample floor(t) - half + 1 + j; tau = t - that sample.
                let tau = frac + half as f64 - 1.0 - j as f64;
                let x = 2.0 * cutoff * tau;
                let sinc = if x.abs() < 1e-12 {
                    1.0
                } else {
                    (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                };
                let r = tau / half as f64;
                let w = if r.abs() >= 1.0 {
                    0.0
                } else {
                    bessel_i0(beta * (1.0 - r * r).sqrt()) / i0_beta
                };
                *c = (2.0 * cutoff * sinc * w) as f32;
            }
        }
        Resampler {
            up,
            down,
            half,
            table,
            buf: vec![0.0; half],
            buf_start: -(half as i64),
            next_out: 0,
            taken: 0,
        }
    }

    /// Feeds input samples and returns every output sample that is now fully determined.
    pub fn process(&mut self, input: &[i16]) -> Vec<i16> {
        self.buf.extend(input.iter().map(|&s| f32::from(s)));
        self.taken += input.len() as u64;
        self.drain(None)
    }

    /// Ends the stream: pads with silence and returns the remaining output, so that the total output
    /// length is `ceil(input_len * rate_out / rate_in)`.
    pub fn flush(&mut self) -> Vec<i16> {
        let total = (self.taken * self.up).div_ceil(self.down);
        self.buf.extend(std::iter::repeat_n(0.0, self.half + 1));
        let out = self.drain(Some(total));
        self.buf.clear();
        self.buf.extend(std::iter::repeat_n(0.0, self.half));
        self.buf_start = -(self.half as i64);
        self.next_out = 0;
        self.taken = 0;
        out
    }

    fn drain(&mut self, limit: Option<u64>) -> Vec<i16> {
        let width = 2 * self.half;
        let end = self.buf_start + self.buf.len() as i64;
        let mut out = Vec::new();
        loop {
            if limit.is_some_and(|l| self.next_out >= l) {
                break;
            }
            let pos = self.next_out * self.down;
            let idx = (pos / self.up) as i64;
            let phase = (pos % self.up) as usize;
            let first = idx - self.half as i64 + 1;
            if first + width as i64 > end {
                break;
            }
            let start = (first - self.buf_start) as usize;
            let coeffs = &self.table[phase * width..(phase + 1) * width];
            let acc: f32 = self.buf[start..start + width]
                .iter()
                .zip(coeffs)
                .map(|(x, c)| x * c)
                .sum();
            out.push(acc.round().clamp(-32768.0, 32767.0) as i16);
            self.next_out += 1;
        }
        // Drop history no future output needs.
        let pos = self.next_out * self.down;
        let keep_from = (pos / self.up) as i64 - self.half as i64 + 1;
        if keep_from > self.buf_start {
            let n = ((keep_from - self.buf_start) as usize).min(self.buf.len());
            self.buf.drain(..n);
            self.buf_start += n as i64;
        }
        out
    }
}

/// Resamples a whole signal in one go.
pub fn resample(input: &[i16], rate_in: u32, rate_out: u32) -> Vec<i16> {
    if rate_in == rate_out {
        return input.to_vec();
    }
    let mut r = Resampler::new(rate_in, rate_out);
    let mut out = r.process(input);
    out.extend(r.flush());
    out
}
