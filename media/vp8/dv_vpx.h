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

// dv_i420_to_rgba converts planes to RGBA (alpha 255), BT.601 limited range. The chroma
// terms are computed once per pair of pixels.
static void dv_i420_to_rgba(const uint8_t *Y, int ys, const uint8_t *U, int us, const uint8_t *V, int vs,
		int w, int h, uint8_t *dst, int dstride) {
	for (int y = 0; y < h; y++) {
		const uint8_t *yr = Y + y * ys, *ur = U + (y / 2) * us, *vr = V + (y / 2) * vs;
		uint8_t *d = dst + y * dstride;
		int x = 0;
		for (; x + 1 < w; x += 2, d += 8) {
			int du = ur[x / 2] - 128, dv = vr[x / 2] - 128;
			int rr = 409 * dv + 128, gg = -100 * du - 208 * dv + 128, bb = 516 * du + 128;
			int c0 = 298 * (yr[x] - 16), c1 = 298 * (yr[x + 1] - 16);
			d[0] = clamp8((c0 + rr) >> 8);
			d[1] = clamp8((c0 + gg) >> 8);
			d[2] = clamp8((c0 + bb) >> 8);
			d[3] = 255;
			d[4] = clamp8((c1 + rr) >> 8);
			d[5] = clamp8((c1 + gg) >> 8);
			d[6] = clamp8((c1 + bb) >> 8);
			d[7] = 255;
		}
		if (x < w) {
			int du = ur[x / 2] - 128, dv = vr[x / 2] - 128;
			int c = 298 * (yr[x] - 16);
			d[0] = clamp8((c + 409 * dv + 128) >> 8);
			d[1] = clamp8((c - 100 * du - 208 * dv + 128) >> 8);
			d[2] = clamp8((c + 516 * du + 128) >> 8);
			d[3] = 255;
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
