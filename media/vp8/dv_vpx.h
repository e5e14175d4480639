// C helpers for package vp8; every function is static, the header is included by each
// cgo file of the package.
#ifndef DV_VPX_H
#define DV_VPX_H

#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <vpx/vpx_encoder.h>
#include <vpx/vpx_decoder.h>
#include <vpx/vp8cx.h>
#include <vpx/vp8dx.h>

typedef struct {
	vpx_codec_ctx_t ctx;
	vpx_codec_enc_cfg_t cfg;
	vpx_image_t *img;
	int inited;
} dv_enc;

// dv_rc holds the rate-control settings (see rateControl in encoder.go).
typedef struct {
	int undershoot_pct, overshoot_pct;
	int buf_sz, buf_initial_sz, buf_optimal_sz;
	int min_q, max_q;
	int drop_frame;
	int static_threshold;
	int max_intra_pct;
} dv_rc;

// dv_enc_new configures libvpx once. The timebase is microseconds: frames carry their
// capture time, so rate control spends the bit rate over real time whatever the real
// frame rate is (libvpx measures the rate from the timestamps).
static vpx_codec_err_t dv_enc_new(dv_enc **out, int w, int h,
		int kbps, int kf_max, int threads, int cpu_used, dv_rc rc) {
	dv_enc *e = calloc(1, sizeof(dv_enc));
	if (!e) return VPX_CODEC_MEM_ERROR;
	vpx_codec_err_t err = vpx_codec_enc_config_default(vpx_codec_vp8_cx(), &e->cfg, 0);
	if (err) { free(e); return err; }
	e->cfg.g_w = w;
	e->cfg.g_h = h;
	e->cfg.g_timebase.num = 1;
	e->cfg.g_timebase.den = 1000000;
	e->cfg.g_threads = threads;
	e->cfg.g_lag_in_frames = 0;
	e->cfg.g_pass = VPX_RC_ONE_PASS;
	e->cfg.g_error_resilient = 0;
	e->cfg.rc_end_usage = VPX_CBR;
	e->cfg.rc_target_bitrate = kbps;
	e->cfg.rc_min_quantizer = rc.min_q;
	e->cfg.rc_max_quantizer = rc.max_q;
	e->cfg.rc_undershoot_pct = rc.undershoot_pct;
	e->cfg.rc_overshoot_pct = rc.overshoot_pct;
	e->cfg.rc_buf_sz = rc.buf_sz;
	e->cfg.rc_buf_initial_sz = rc.buf_initial_sz;
	e->cfg.rc_buf_optimal_sz = rc.buf_optimal_sz;
	e->cfg.rc_dropframe_thresh = rc.drop_frame;
	e->cfg.kf_mode = VPX_KF_AUTO;
	e->cfg.kf_min_dist = 0;
	e->cfg.kf_max_dist = kf_max;
	err = vpx_codec_enc_init(&e->ctx, vpx_codec_vp8_cx(), &e->cfg, 0);
	if (err) { free(e); return err; }
	e->inited = 1;
	vpx_codec_control(&e->ctx, VP8E_SET_CPUUSED, cpu_used);
	vpx_codec_control(&e->ctx, VP8E_SET_NOISE_SENSITIVITY, 0);
	vpx_codec_control(&e->ctx, VP8E_SET_STATIC_THRESHOLD, rc.static_threshold);
	vpx_codec_control(&e->ctx, VP8E_SET_TOKEN_PARTITIONS, threads > 1 ? VP8_TWO_TOKENPARTITION : VP8_ONE_TOKENPARTITION);
	vpx_codec_control(&e->ctx, VP8E_SET_MAX_INTRA_BITRATE_PCT, rc.max_intra_pct);
	e->img = vpx_img_alloc(NULL, VPX_IMG_FMT_I420, w, h, 16);
	if (!e->img) { vpx_codec_destroy(&e->ctx); free(e); return VPX_CODEC_MEM_ERROR; }
	*out = e;
	return VPX_CODEC_OK;
}

static vpx_codec_err_t dv_enc_set_bitrate(dv_enc *e, int kbps) {
	e->cfg.rc_target_bitrate = kbps;
	return vpx_codec_enc_config_set(&e->ctx, &e->cfg);
}

// dv_enc_encode encodes e->img and copies the frame into out (cap bytes). It returns the
// size, 0 when libvpx produced no frame, or -1 when out is too small; *key is set for
// key frames.
static int dv_enc_encode(dv_enc *e, int64_t pts, int64_t dur, int force_kf, uint8_t *out, int cap, int *key, vpx_codec_err_t *err) {
	*err = vpx_codec_encode(&e->ctx, e->img, pts, dur, force_kf ? VPX_EFLAG_FORCE_KF : 0, VPX_DL_REALTIME);
	*key = 0;
	if (*err) return 0;
	vpx_codec_iter_t iter = NULL;
	const vpx_codec_cx_pkt_t *pkt;
	int n = 0;
	while ((pkt = vpx_codec_get_cx_data(&e->ctx, &iter)) != NULL) {
		if (pkt->kind != VPX_CODEC_CX_FRAME_PKT) continue;
		if (n + (int)pkt->data.frame.sz > cap) return -1;
		memcpy(out + n, pkt->data.frame.buf, pkt->data.frame.sz);
		n += pkt->data.frame.sz;
		if (pkt->data.frame.flags & VPX_FRAME_IS_KEY) *key = 1;
	}
	return n;
}

static void dv_enc_free(dv_enc *e) {
	if (!e) return;
	if (e->img) vpx_img_free(e->img);
	if (e->inited) vpx_codec_destroy(&e->ctx);
	free(e);
}

// BT.601 limited range, 8-bit fixed point.
static inline uint8_t clamp8(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

static void dv_rgba_to_i420(const uint8_t *src, int stride, int w, int h, vpx_image_t *img) {
	uint8_t *Y = img->planes[0], *U = img->planes[1], *V = img->planes[2];
	int ys = img->stride[0], us = img->stride[1], vs = img->stride[2];
	for (int y = 0; y < h; y++) {
		const uint8_t *p = src + y * stride;
		uint8_t *yr = Y + y * ys;
		for (int x = 0; x < w; x++, p += 4)
			yr[x] = (uint8_t)((66 * p[0] + 129 * p[1] + 25 * p[2] + 128) >> 8) + 16;
	}
	for (int y = 0; y < h; y += 2) {
		const uint8_t *p0 = src + y * stride;
		const uint8_t *p1 = (y + 1 < h) ? p0 + stride : p0;
		uint8_t *ur = U + (y / 2) * us, *vr = V + (y / 2) * vs;
		for (int x = 0; x < w; x += 2) {
			int x1 = (x + 1 < w) ? x + 1 : x;
			int r = p0[4*x] + p0[4*x1] + p1[4*x] + p1[4*x1];
			int g = p0[4*x+1] + p0[4*x1+1] + p1[4*x+1] + p1[4*x1+1];
			int b = p0[4*x+2] + p0[4*x1+2] + p1[4*x+2] + p1[4*x1+2];
			ur[x/2] = clamp8(((-38 * r - 74 * g + 112 * b + 512) >> 10) + 128);
			vr[x/2] = clamp8(((112 * r - 94 * g - 18 * b + 512) >> 10) + 128);
		}
	}
}

// dv_i420_to_rgba converts planes to RGBA (alpha 255), BT.601 limited range, in 6-bit fixed
// point that fits 16-bit lanes (libyuv's layout of the sums):
//   Y1 = ((y·257·18997) >> 16) − 1160      (1.164·64·(y − 16), +32 to round the >> 6)
//   R = (Y1 + 102·dv) >> 6,  G = (Y1 − 25·du − 52·dv) >> 6,  B = (Y1 + 129·du) >> 6
// with du = u − 128, dv = v − 128, each clamped to 0..255. Only B's sum can leave 16 bits,
// and only upwards, where it clamps to 255 either way, so the SSE2 path (16 pixels a step,
// saturating adds) and the scalar one (the row's tail, and machines without SSE2) give the
// same bytes; TestI420ToRGBA checks them against the formula.
static inline int dv_y1(int y) { return (int)(((uint32_t)y * 257u * 18997u) >> 16) - 1160; }

static inline void dv_rgba_px(uint8_t *d, int y1, int rr, int gg, int bb) {
	d[0] = clamp8((y1 + rr) >> 6);
	d[1] = clamp8((y1 + gg) >> 6);
	d[2] = clamp8((y1 + bb) >> 6);
	d[3] = 255;
}

#if defined(__SSE2__)
#include <emmintrin.h>
// dv_i420_row16 converts 16 pixels (x even) of one row.
static inline void dv_i420_row16(const uint8_t *yr, const uint8_t *ur, const uint8_t *vr, uint8_t *d) {
	const __m128i zero = _mm_setzero_si128(), c128 = _mm_set1_epi16(128), yg = _mm_set1_epi16(18997),
		bias = _mm_set1_epi16(1160), kr = _mm_set1_epi16(102), kgu = _mm_set1_epi16(-25),
		kgv = _mm_set1_epi16(-52), kb = _mm_set1_epi16(129), alpha = _mm_set1_epi8((char)0xff);
	__m128i y = _mm_loadu_si128((const __m128i *)yr);
	__m128i du = _mm_sub_epi16(_mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)ur), zero), c128);
	__m128i dv = _mm_sub_epi16(_mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)vr), zero), c128);
	__m128i rr = _mm_mullo_epi16(dv, kr);
	__m128i gg = _mm_add_epi16(_mm_mullo_epi16(du, kgu), _mm_mullo_epi16(dv, kgv));
	__m128i bb = _mm_mullo_epi16(du, kb);
	// Each chroma term serves two neighbouring pixels: pixels 0-7 and 8-15.
	__m128i rr0 = _mm_unpacklo_epi16(rr, rr), rr1 = _mm_unpackhi_epi16(rr, rr);
	__m128i gg0 = _mm_unpacklo_epi16(gg, gg), gg1 = _mm_unpackhi_epi16(gg, gg);
	__m128i bb0 = _mm_unpacklo_epi16(bb, bb), bb1 = _mm_unpackhi_epi16(bb, bb);
	__m128i y0 = _mm_sub_epi16(_mm_mulhi_epu16(_mm_unpacklo_epi8(y, y), yg), bias);
	__m128i y1 = _mm_sub_epi16(_mm_mulhi_epu16(_mm_unpackhi_epi8(y, y), yg), bias);
	__m128i r = _mm_packus_epi16(_mm_srai_epi16(_mm_adds_epi16(y0, rr0), 6), _mm_srai_epi16(_mm_adds_epi16(y1, rr1), 6));
	__m128i g = _mm_packus_epi16(_mm_srai_epi16(_mm_adds_epi16(y0, gg0), 6), _mm_srai_epi16(_mm_adds_epi16(y1, gg1), 6));
	__m128i b = _mm_packus_epi16(_mm_srai_epi16(_mm_adds_epi16(y0, bb0), 6), _mm_srai_epi16(_mm_adds_epi16(y1, bb1), 6));
	__m128i rg0 = _mm_unpacklo_epi8(r, g), rg1 = _mm_unpackhi_epi8(r, g);
	__m128i ba0 = _mm_unpacklo_epi8(b, alpha), ba1 = _mm_unpackhi_epi8(b, alpha);
	_mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi16(rg0, ba0));
	_mm_storeu_si128((__m128i *)(d + 16), _mm_unpackhi_epi16(rg0, ba0));
	_mm_storeu_si128((__m128i *)(d + 32), _mm_unpacklo_epi16(rg1, ba1));
	_mm_storeu_si128((__m128i *)(d + 48), _mm_unpackhi_epi16(rg1, ba1));
}
#endif

static void dv_i420_to_rgba(const uint8_t *Y, int ys, const uint8_t *U, int us, const uint8_t *V, int vs,
		int w, int h, uint8_t *dst, int dstride) {
	for (int y = 0; y < h; y++) {
		const uint8_t *yr = Y + y * ys, *ur = U + (y / 2) * us, *vr = V + (y / 2) * vs;
		uint8_t *d = dst + y * dstride;
		int x = 0;
#if defined(__SSE2__)
		for (; x + 16 <= w; x += 16, d += 64) dv_i420_row16(yr + x, ur + x / 2, vr + x / 2, d);
#endif
		for (; x < w; x += 2, d += 8) {
			int du = ur[x / 2] - 128, dv = vr[x / 2] - 128;
			int rr = 102 * dv, gg = -25 * du - 52 * dv, bb = 129 * du;
			dv_rgba_px(d, dv_y1(yr[x]), rr, gg, bb);
			if (x + 1 < w) dv_rgba_px(d + 4, dv_y1(yr[x + 1]), rr, gg, bb);
		}
	}
}

static vpx_codec_err_t dv_dec_new(vpx_codec_ctx_t **out, int threads) {
	vpx_codec_ctx_t *c = calloc(1, sizeof(vpx_codec_ctx_t));
	if (!c) return VPX_CODEC_MEM_ERROR;
	vpx_codec_dec_cfg_t cfg = {0};
	cfg.threads = threads;
	vpx_codec_err_t err = vpx_codec_dec_init(c, vpx_codec_vp8_dx(), &cfg, 0);
	if (err) { free(c); return err; }
	*out = c;
	return VPX_CODEC_OK;
}

static vpx_codec_err_t dv_dec_decode(vpx_codec_ctx_t *c, const uint8_t *data, unsigned int n, vpx_image_t **img) {
	*img = NULL;
	vpx_codec_err_t err = vpx_codec_decode(c, data, n, NULL, 0);
	if (err) return err;
	vpx_codec_iter_t iter = NULL;
	vpx_image_t *f, *last = NULL;
	while ((f = vpx_codec_get_frame(c, &iter)) != NULL) last = f;
	*img = last;
	return VPX_CODEC_OK;
}

static void dv_dec_free(vpx_codec_ctx_t *c) {
	if (!c) return;
	vpx_codec_destroy(c);
	free(c);
}
#endif
