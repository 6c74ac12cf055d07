/* response_flags.h: Envoy-style response flags, the access log's
 * short account of why an exchange ended as it did. Shared by the HTTP
 * stream and the TCP proxy, so lower layers (net, log) need not include
 * the stream engine for them. */
#ifndef WEFT_COMMON_RESPONSE_FLAGS_H
#define WEFT_COMMON_RESPONSE_FLAGS_H

/* Envoy-style response flags for the access log. */
enum {
    WEFT_RF_NR = 1 << 0,  /* no route */
    WEFT_RF_UH = 1 << 1,  /* no healthy upstream */
    WEFT_RF_UF = 1 << 2,  /* upstream connection failure */
    WEFT_RF_UT = 1 << 3,  /* upstream request timeout */
    WEFT_RF_UC = 1 << 4,  /* upstream connection termination */
    WEFT_RF_UPE = 1 << 5, /* upstream protocol error */
    WEFT_RF_DC = 1 << 6,  /* downstream connection termination */
    WEFT_RF_DPE = 1 << 7, /* downstream protocol error */
    WEFT_RF_SI = 1 << 8,  /* stream idle timeout */
    WEFT_RF_DR = 1 << 9,  /* direct response / redirect */
    WEFT_RF_LR = 1 << 10, /* local reset */
};

#endif
