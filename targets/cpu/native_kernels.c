/* The cpu target's native kernels: float32 loops numpy cannot run without a pass (and a
 * temporary) per operation. Compiled on first use by targets/cpu/native.py with the system
 * C compiler and loaded with ctypes; each is checked against the numpy rule it replaces
 * (tests/unit/test_cpu_kernels.py). Arrays are C-contiguous; `threads` bounds OpenMP. */
#include <math.h>
#include <stdint.h>
#include <float.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* A depthwise convolution: y[n, c] = sum_{i, j} w[c, i, j] * x[n, c, oh * sh + i * dh - ph, ...]
 * (+ b[c]); taps that fall in the padding read zero. */
void dw_conv2d(const float *x, const float *w, const float *b, float *y, int64_t n, int64_t c, int64_t h,
               int64_t wd, int64_t kh, int64_t kw, int64_t oh, int64_t ow, int64_t sh, int64_t sw, int64_t dh,
               int64_t dw, int64_t ph, int64_t pw, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t nc = 0; nc < n * c; nc++) {
        const int64_t ch = nc % c;
        const float *xp = x + nc * h * wd;
        const float *wp = w + ch * kh * kw;
        float *yp = y + nc * oh * ow;
        const float bias = b ? b[ch] : 0.0f;
        for (int64_t r = 0; r < oh; r++) {
            float *row = yp + r * ow;
            for (int64_t q = 0; q < ow; q++) row[q] = bias;
            for (int64_t i = 0; i < kh; i++) {
                const int64_t xr = r * sh + i * dh - ph;
                if (xr < 0 || xr >= h) continue;
                const float *xrow = xp + xr * wd;
                for (int64_t j = 0; j < kw; j++) {
                    const float wv = wp[i * kw + j];
                    const int64_t off = j * dw - pw;
                    /* columns whose tap is inside the row: off + q * sw in [0, wd) */
                    int64_t q0 = off < 0 ? (-off + sw - 1) / sw : 0;
                    int64_t q1 = (wd - off + sw - 1) / sw;
                    if (q1 > ow) q1 = ow;
                    if (sw == 1) {
                        for (int64_t q = q0; q < q1; q++) row[q] += wv * xrow[q + off];
                    } else {
                        for (int64_t q = q0; q < q1; q++) row[q] += wv * xrow[q * sw + off];
                    }
                }
            }
        }
    }
}

/* Max or average pooling over [N*C] planes. mode 0: max (NaN propagates, as numpy's
 * maximum does); mode 1: average over the taps inside the input (count_include_pad 0);
 * mode 2: average counting the declared padding (pad_h_end / pad_w_end: the declared end
 * pads; a ceil_mode overhang past them does not count). */
void pool2d(const float *x, float *y, int64_t planes, int64_t h, int64_t wd, int64_t kh, int64_t kw, int64_t oh,
            int64_t ow, int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t ph, int64_t pw, int64_t ph_end,
            int64_t pw_end, int mode, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * h * wd;
        float *yp = y + p * oh * ow;
        for (int64_t r = 0; r < oh; r++) {
            for (int64_t q = 0; q < ow; q++) {
                float acc = mode == 0 ? -INFINITY : 0.0f;
                int64_t count = 0, declared = 0;
                for (int64_t i = 0; i < kh; i++) {
                    const int64_t xr = r * sh + i * dh - ph;
                    const int in_rows = xr >= -ph && xr < h + ph_end;
                    for (int64_t j = 0; j < kw; j++) {
                        const int64_t xc = q * sw + j * dw - pw;
                        declared += in_rows && xc >= -pw && xc < wd + pw_end;
                        if (xr < 0 || xr >= h || xc < 0 || xc >= wd) continue;
                        const float v = xp[xr * wd + xc];
                        if (mode == 0) {
                            if (acc == acc && !(v <= acc)) acc = v; /* larger, or NaN (which then stays) */
                        } else {
                            acc += v;
                        }
                        count++;
                    }
                }
                if (mode == 1) acc = acc / (float)count;
                if (mode == 2) acc = acc / (float)declared;
                yp[r * ow + q] = acc;
            }
        }
    }
}

/* LayerNormalization over the last axis of [rows, d]: y = (x - mean) * inv_std * scale + bias,
 * with the mean and inv_std per row (float32, as the ONNX op's optional outputs). */
void layer_norm(const float *x, const float *scale, const float *bias, float *y, float *mean, float *inv_std,
                int64_t rows, int64_t d, float eps, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        double s = 0.0;
        for (int64_t k = 0; k < d; k++) s += xr[k];
        const float m = (float)(s / d);
        double v = 0.0;
        for (int64_t k = 0; k < d; k++) {
            const float t = xr[k] - m;
            v += (double)t * t;
        }
        const float is = 1.0f / sqrtf((float)(v / d) + eps);
        for (int64_t k = 0; k < d; k++) yr[k] = (xr[k] - m) * is * scale[k] + (bias ? bias[k] : 0.0f);
        mean[r] = m;
        inv_std[r] = is;
    }
}

/* Softmax over the last axis of [rows, d]. */
void softmax(const float *x, float *y, int64_t rows, int64_t d, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        float m = -INFINITY;
        for (int64_t k = 0; k < d; k++) m = xr[k] > m ? xr[k] : m;
        if (m == -INFINITY) m = 0.0f; /* a row of -inf: exp gives 0 / 0 = NaN, as numpy's does */
        double s = 0.0;
        for (int64_t k = 0; k < d; k++) {
            yr[k] = expf(xr[k] - m);
            s += yr[k];
        }
        const float inv = (float)(1.0 / s);
        for (int64_t k = 0; k < d; k++) yr[k] *= inv;
    }
}
