/* test_tls_hello.c - the ClientHello parser: real hellos from OpenSSL and curl, SNI
 * canonicalisation, fragmentation over records fed at every prefix length, NOT_TLS, ECH, and one
 * test per malformed form (each also checked at every prefix: never OK, and once INVALID, INVALID
 * for every longer prefix). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/tls_hello.h"

/*
 * Real ClientHellos, captured on loopback only (127.0.0.1, a throw-away Python listener that
 * accepted one connection and saved the records up to the end of the first handshake message):
 *   ossl13_sni_alpn  openssl s_client (OpenSSL 3.0.19) -connect 127.0.0.1:P -servername
 * api.example.com -alpn h2,http/1.1 ossl12_sni       openssl s_client -connect 127.0.0.1:P
 * -servername www.example.org -tls1_2 ossl13_nosni     openssl s_client -connect 127.0.0.1:P
 * -noservername -tls1_3 ossl_upper_dot   openssl s_client -connect 127.0.0.1:P -servername
 * API.Example.COM. ossl10           openssl s_client -connect 127.0.0.1:P -servername
 * legacy.example.net -tls1 -cipher DEFAULT@SECLEVEL=0 ossl13_psk       openssl s_client -connect
 * 127.0.0.1:P -servername resume.example.com -sess_in S (S saved from a local `openssl s_server` on
 * 127.0.0.1 with a self-signed cert): TLS 1.3 resumption, pre_shared_key last curl_sni curl 7.88.1
 * -sk --resolve files.example.com:P:127.0.0.1 https://files.example.com:P/ curl_ip          curl
 * -sk https://127.0.0.1:P/ (an IP URL: no server_name) Dumped as C arrays with a few lines of
 * Python. The same captures are seeds in tests/fuzz/corpus/fuzz_tls_hello/.
 */
static const uint8_t ossl13_sni_alpn[339] = {
    0x16, 0x03, 0x01, 0x01, 0x4e, 0x01, 0x00, 0x01, 0x4a, 0x03, 0x03, 0x94, 0x7f, 0x52, 0x3d, 0xd7,
    0x0d, 0xcb, 0x49, 0x00, 0x4d, 0x72, 0x87, 0x6d, 0x54, 0x1f, 0x36, 0xb1, 0x56, 0xd5, 0x8b, 0xe1,
    0x0e, 0xd9, 0xc8, 0xef, 0xd6, 0xb1, 0xcc, 0x5e, 0x57, 0xca, 0x6e, 0x20, 0xf9, 0xad, 0x87, 0x64,
    0x31, 0x88, 0x5e, 0x70, 0x97, 0xe1, 0x88, 0x7a, 0x53, 0x3a, 0x4e, 0xee, 0xa4, 0xf4, 0x26, 0x11,
    0x1b, 0xc7, 0x1c, 0xd7, 0x77, 0xdb, 0xd5, 0xa9, 0x57, 0x2b, 0x78, 0xb5, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xc3,
    0x00, 0x00, 0x00, 0x14, 0x00, 0x12, 0x00, 0x00, 0x0f, 0x61, 0x70, 0x69, 0x2e, 0x65, 0x78, 0x61,
    0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02,
    0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18,
    0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00, 0x10,
    0x00, 0x0e, 0x00, 0x0c, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31,
    0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03,
    0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04,
    0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02,
    0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03,
    0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00,
    0x1d, 0x00, 0x20, 0x55, 0x97, 0xfb, 0xd5, 0xc4, 0xfd, 0xac, 0xa7, 0x97, 0x37, 0x2c, 0xb6, 0xb7,
    0x7b, 0x4b, 0xfe, 0xa5, 0xfe, 0xfb, 0xf3, 0x72, 0xc0, 0x6b, 0x92, 0x23, 0xc0, 0xfb, 0xb7, 0x61,
    0x48, 0xb5, 0x0a,
};
static const uint8_t ossl12_sni[212] = {
    0x16, 0x03, 0x01, 0x00, 0xcf, 0x01, 0x00, 0x00, 0xcb, 0x03, 0x03, 0x6b, 0x9f, 0x95, 0x3b, 0x1e,
    0xb4, 0xc2, 0xb4, 0xa9, 0xa0, 0x3c, 0xb6, 0xd9, 0xcf, 0x1d, 0xe0, 0xb9, 0x24, 0x14, 0xfe, 0x07,
    0x50, 0xa0, 0xae, 0xaa, 0x71, 0x95, 0xa7, 0x75, 0x51, 0x88, 0x02, 0x00, 0x00, 0x38, 0xc0, 0x2c,
    0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa, 0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e,
    0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14,
    0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c,
    0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0x6a, 0x00, 0x00, 0x00, 0x14, 0x00, 0x12,
    0x00, 0x00, 0x0f, 0x77, 0x77, 0x77, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f,
    0x72, 0x67, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x0c, 0x00, 0x0a,
    0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x00, 0x23, 0x00, 0x00, 0x00, 0x16,
    0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03,
    0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05,
    0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02,
    0x05, 0x02, 0x06, 0x02,
};
static const uint8_t ossl13_nosni[225] = {
    0x16, 0x03, 0x01, 0x00, 0xdc, 0x01, 0x00, 0x00, 0xd8, 0x03, 0x03, 0x94, 0x1e, 0xb4, 0x2a,
    0x55, 0x3c, 0xa1, 0x76, 0x15, 0x0b, 0x25, 0x49, 0xdd, 0xbc, 0xb4, 0x40, 0x55, 0x52, 0xdd,
    0x73, 0xd5, 0x40, 0x54, 0xe5, 0x74, 0xf4, 0xe4, 0xa3, 0x6d, 0xc8, 0x7b, 0x97, 0x20, 0xa7,
    0x2f, 0xaf, 0x0d, 0x1e, 0x85, 0x26, 0x79, 0x7b, 0xfa, 0xb3, 0xae, 0xe8, 0x2c, 0x97, 0x48,
    0xf2, 0x86, 0x86, 0xbd, 0xb0, 0xf2, 0xb9, 0x5d, 0xf0, 0xdb, 0xc7, 0x86, 0xe8, 0x9b, 0x38,
    0xd1, 0x00, 0x08, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01, 0x00, 0xff, 0x01, 0x00, 0x00, 0x87,
    0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00,
    0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02,
    0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00,
    0x00, 0x00, 0x0d, 0x00, 0x1e, 0x00, 0x1c, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07,
    0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04,
    0x01, 0x05, 0x01, 0x06, 0x01, 0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04, 0x00, 0x2d, 0x00,
    0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x5f, 0x87,
    0x0d, 0xe0, 0x6b, 0xf6, 0x11, 0x81, 0x79, 0x32, 0x2c, 0x7d, 0x41, 0x1c, 0x2e, 0xfe, 0x0f,
    0x89, 0x93, 0xc3, 0x27, 0x2c, 0x52, 0x75, 0x8e, 0xc6, 0xdf, 0xcb, 0xcd, 0xcb, 0x57, 0x19,
};
static const uint8_t ossl_upper_dot[322] = {
    0x16, 0x03, 0x01, 0x01, 0x3d, 0x01, 0x00, 0x01, 0x39, 0x03, 0x03, 0x4c, 0xb8, 0xe4, 0x91, 0xc2,
    0x9b, 0xb2, 0x63, 0x2a, 0xe9, 0x7c, 0x3a, 0x74, 0xe3, 0x79, 0xa6, 0x47, 0xf5, 0xfe, 0xe4, 0xad,
    0x42, 0xb9, 0x09, 0xf2, 0xcb, 0x27, 0x6d, 0x42, 0xdc, 0x4c, 0x9a, 0x20, 0x86, 0xa6, 0x71, 0x9d,
    0x85, 0x49, 0xff, 0xee, 0x9b, 0x49, 0xc4, 0x8a, 0x32, 0x56, 0xc7, 0x3f, 0x61, 0x55, 0x22, 0x65,
    0x7f, 0x86, 0xb5, 0xd2, 0xb4, 0xba, 0x98, 0xfd, 0x42, 0x1e, 0xd6, 0xff, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xb2,
    0x00, 0x00, 0x00, 0x15, 0x00, 0x13, 0x00, 0x00, 0x10, 0x41, 0x50, 0x49, 0x2e, 0x45, 0x78, 0x61,
    0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x43, 0x4f, 0x4d, 0x2e, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01,
    0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00,
    0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00,
    0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05,
    0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08,
    0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04,
    0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02,
    0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d,
    0x00, 0x20, 0x04, 0xe5, 0xc4, 0x29, 0x5c, 0x4e, 0xc6, 0x70, 0xf8, 0x86, 0xc6, 0x27, 0x25, 0x26,
    0x74, 0x99, 0xce, 0x73, 0xb4, 0x31, 0x14, 0x37, 0xd2, 0x17, 0x06, 0x70, 0x83, 0x26, 0x6d, 0x6f,
    0x2c, 0x28,
};
static const uint8_t ossl10[131] = {
    0x16, 0x03, 0x01, 0x00, 0x7e, 0x01, 0x00, 0x00, 0x7a, 0x03, 0x01, 0x84, 0xa7, 0x31, 0x75,
    0x56, 0x6e, 0x28, 0x68, 0xac, 0x58, 0xbd, 0xa2, 0xc1, 0x46, 0xe1, 0xb8, 0x2a, 0xd0, 0x5a,
    0x59, 0xaf, 0xee, 0x56, 0x44, 0xd3, 0x08, 0x43, 0x74, 0x06, 0xe8, 0xee, 0xdd, 0x00, 0x00,
    0x12, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x35,
    0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x00, 0x17, 0x00, 0x15, 0x00,
    0x00, 0x12, 0x6c, 0x65, 0x67, 0x61, 0x63, 0x79, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c,
    0x65, 0x2e, 0x6e, 0x65, 0x74, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a,
    0x00, 0x0c, 0x00, 0x0a, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x00,
    0x23, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00,
};
static const uint8_t ossl13_psk[595] = {
    0x16, 0x03, 0x01, 0x02, 0x4e, 0x01, 0x00, 0x02, 0x4a, 0x03, 0x03, 0x70, 0x39, 0x33, 0x13, 0x88,
    0xa7, 0xaa, 0xc5, 0x77, 0x6a, 0x3f, 0x51, 0x76, 0x80, 0x84, 0xa0, 0xae, 0xf5, 0x13, 0xfb, 0xb1,
    0xe3, 0x95, 0x06, 0xf6, 0xac, 0xc2, 0xec, 0x60, 0x7d, 0xba, 0x2e, 0x20, 0xad, 0x7f, 0xd0, 0xef,
    0x28, 0x43, 0xb2, 0x1e, 0x5f, 0x16, 0x0b, 0x47, 0x6e, 0xa8, 0xc1, 0x85, 0x27, 0x89, 0x57, 0xc1,
    0x32, 0x2f, 0x8b, 0xb1, 0x81, 0xbc, 0x18, 0xc2, 0xc1, 0x27, 0x09, 0x20, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x01, 0xc3,
    0x00, 0x00, 0x00, 0x17, 0x00, 0x15, 0x00, 0x00, 0x12, 0x72, 0x65, 0x73, 0x75, 0x6d, 0x65, 0x2e,
    0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x0b, 0x00, 0x04, 0x03,
    0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00,
    0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00,
    0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04,
    0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08,
    0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03,
    0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03,
    0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24,
    0x00, 0x1d, 0x00, 0x20, 0xb3, 0xa1, 0x51, 0xc4, 0xbd, 0xb2, 0xb1, 0x7e, 0x55, 0x94, 0xa6, 0x23,
    0xc1, 0x42, 0x34, 0x00, 0x6f, 0xe4, 0x4c, 0xe6, 0xfb, 0x50, 0xf7, 0xb1, 0x27, 0x46, 0xf7, 0x03,
    0x01, 0xb6, 0x0d, 0x4e, 0x00, 0x29, 0x01, 0x0b, 0x00, 0xd6, 0x00, 0xd0, 0xae, 0x97, 0x74, 0xaa,
    0xb2, 0x5b, 0x67, 0xab, 0x35, 0xbd, 0xea, 0x90, 0x99, 0x00, 0x85, 0xbf, 0xc3, 0x03, 0xff, 0x33,
    0x80, 0x7d, 0xbe, 0x66, 0x4d, 0x1b, 0x1d, 0x06, 0xe3, 0x22, 0x7c, 0x3c, 0x44, 0xba, 0xed, 0x78,
    0x29, 0x03, 0x6a, 0x20, 0x66, 0xa0, 0xc3, 0xbe, 0xf0, 0x8e, 0x36, 0x02, 0xa9, 0x17, 0x40, 0xec,
    0xc5, 0xa2, 0x1a, 0x9b, 0x83, 0x1d, 0xc6, 0xc5, 0x69, 0x2c, 0x17, 0x80, 0x0c, 0x48, 0x80, 0xc6,
    0x13, 0x50, 0x32, 0xd9, 0xd8, 0x3b, 0xb2, 0xa8, 0xc3, 0xd1, 0x9f, 0xf4, 0x93, 0x0f, 0xb1, 0xc5,
    0x80, 0xaa, 0x50, 0x5b, 0xf2, 0x39, 0x11, 0x34, 0xca, 0x8a, 0x1b, 0x50, 0x5a, 0xd0, 0x7c, 0x96,
    0x36, 0x56, 0x91, 0xc8, 0xa9, 0x05, 0xf6, 0x22, 0xaa, 0x20, 0x72, 0x3d, 0x1b, 0x60, 0x7c, 0x36,
    0x56, 0x14, 0xed, 0x6a, 0xea, 0x48, 0x27, 0x1a, 0xb5, 0xa0, 0x19, 0x57, 0x65, 0xee, 0x2f, 0xa3,
    0xd7, 0xb7, 0x89, 0xd2, 0x62, 0x14, 0x25, 0x62, 0x2c, 0x3d, 0x8a, 0xc7, 0xa8, 0xb3, 0x14, 0x44,
    0x7a, 0xad, 0xd3, 0x3c, 0xd3, 0x26, 0xe6, 0x87, 0xd7, 0xd5, 0x28, 0x20, 0x1e, 0x39, 0xee, 0x2c,
    0x22, 0x11, 0x87, 0xdd, 0x34, 0xd2, 0x5d, 0xf7, 0x7a, 0x6f, 0xb1, 0x92, 0x9d, 0x38, 0x6e, 0xcd,
    0x73, 0xad, 0xfb, 0x3b, 0x59, 0x08, 0x25, 0x21, 0x58, 0x87, 0x38, 0xa6, 0x82, 0x81, 0x60, 0x66,
    0xbf, 0xb6, 0x5c, 0xaf, 0xf4, 0x46, 0x0d, 0x91, 0xd3, 0xa3, 0x0d, 0x26, 0x2b, 0x18, 0xf1, 0x43,
    0x00, 0x31, 0x30, 0x48, 0x4d, 0x8e, 0xb9, 0xc7, 0xcc, 0x28, 0x98, 0x96, 0x50, 0xc7, 0x1f, 0xf6,
    0xff, 0x4b, 0xce, 0xfe, 0xee, 0x96, 0x9a, 0xf9, 0x72, 0x3b, 0xb2, 0xcb, 0x8e, 0x9b, 0xbb, 0x09,
    0xb9, 0x95, 0x8a, 0x97, 0x0e, 0xbe, 0x82, 0x59, 0x90, 0x78, 0x71, 0x3c, 0xd9, 0x7d, 0x5b, 0x94,
    0x93, 0x31, 0x38,
};
static const uint8_t curl_sni[517] = {
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x38, 0xb3, 0x49, 0xc1, 0x1e,
    0xac, 0xcc, 0x3a, 0x96, 0xde, 0x92, 0x1c, 0xea, 0x23, 0xc7, 0xff, 0x38, 0x4c, 0x0f, 0xec, 0x2f,
    0x5d, 0xe6, 0xa5, 0x65, 0x2c, 0x46, 0x63, 0x6a, 0x60, 0xfc, 0xa4, 0x20, 0x11, 0x23, 0xca, 0x0f,
    0x89, 0x97, 0xfa, 0x20, 0x2e, 0x97, 0x7c, 0x91, 0x24, 0x9c, 0x2a, 0xb4, 0x63, 0xa8, 0xcf, 0x34,
    0x92, 0x86, 0x61, 0x33, 0x69, 0x4b, 0x36, 0x80, 0xc3, 0xb9, 0x0a, 0x95, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x01, 0x75,
    0x00, 0x00, 0x00, 0x16, 0x00, 0x14, 0x00, 0x00, 0x11, 0x66, 0x69, 0x6c, 0x65, 0x73, 0x2e, 0x65,
    0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00,
    0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19,
    0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x10, 0x00, 0x0e,
    0x00, 0x0c, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31, 0x00, 0x16,
    0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x31, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28,
    0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b,
    0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01,
    0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03,
    0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00,
    0x24, 0x00, 0x1d, 0x00, 0x20, 0xa7, 0x08, 0xf6, 0xa1, 0xf9, 0x55, 0x31, 0x0f, 0x0d, 0xe9, 0x48,
    0x64, 0x4d, 0xba, 0xaf, 0xc9, 0x15, 0x5e, 0xfd, 0x7b, 0x21, 0x82, 0x87, 0x60, 0xc7, 0xbd, 0xf7,
    0x25, 0x09, 0x8b, 0xdc, 0x2c, 0x00, 0x15, 0x00, 0xac, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00,
};
static const uint8_t curl_ip[517] = {
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0c, 0xf0, 0xa3, 0x04, 0x92,
    0x49, 0x2e, 0x59, 0xf6, 0xbb, 0x27, 0x68, 0x90, 0xbb, 0x44, 0x8e, 0xdb, 0xc5, 0x34, 0x04, 0xd1,
    0x6e, 0xfe, 0x87, 0xb8, 0xcd, 0x95, 0xb8, 0x7f, 0x3d, 0xa9, 0x9d, 0x20, 0xd2, 0x8d, 0x3c, 0x9f,
    0xec, 0xd8, 0x30, 0x00, 0x8b, 0xb0, 0xd1, 0x8f, 0x06, 0xd1, 0xfb, 0x3b, 0xfd, 0xb1, 0xf7, 0x89,
    0x6a, 0x6b, 0x93, 0x91, 0x6e, 0x0f, 0x2d, 0xcd, 0x22, 0x52, 0x17, 0x1b, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x01, 0x75,
    0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d,
    0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03,
    0x01, 0x04, 0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70,
    0x2f, 0x31, 0x2e, 0x31, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x31, 0x00, 0x00,
    0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08,
    0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01,
    0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b,
    0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01,
    0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0xe5, 0xcc, 0xae, 0xd8, 0x0a,
    0x90, 0x64, 0x1a, 0x75, 0x39, 0x10, 0xff, 0x48, 0xb6, 0x9b, 0x48, 0xc2, 0x04, 0x7f, 0xc5, 0xef,
    0xb7, 0x8e, 0x7e, 0xd3, 0x15, 0xc6, 0xc7, 0xe8, 0x8e, 0xdf, 0x04, 0x00, 0x15, 0x00, 0xc6, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00,
};

#define BB_CAP (PD_TLS_HELLO_WIRE_MAX + 4096)

/* ---- a small byte builder with back-patched length prefixes ---- */

struct bb {
    uint8_t b[BB_CAP];
    size_t n;
    size_t open[8];
    size_t width[8];
    int depth;
};

static struct bb *bb_new(void)
{
    struct bb *b = calloc(1, sizeof *b);
    assert_non_null(b);
    return b;
}

static void bb_u8(struct bb *b, unsigned v)
{
    assert_true(b->n < BB_CAP);
    b->b[b->n++] = (uint8_t)v;
}

static void bb_u16(struct bb *b, unsigned v)
{
    bb_u8(b, v >> 8);
    bb_u8(b, v & 0xff);
}

static void bb_put(struct bb *b, const void *p, size_t n)
{
    assert_true(b->n + n <= BB_CAP);
    if (n)
        memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void bb_fill(struct bb *b, unsigned byte, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bb_u8(b, byte);
}

/* Open a length prefix of `width` bytes (1, 2 or 3), closed by bb_close. */
static void bb_open(struct bb *b, size_t width)
{
    assert_true(b->depth < 8);
    b->open[b->depth] = b->n;
    b->width[b->depth] = width;
    b->depth++;
    bb_fill(b, 0, width);
}

static void bb_close(struct bb *b)
{
    assert_true(b->depth > 0);
    b->depth--;
    size_t at = b->open[b->depth], w = b->width[b->depth];
    size_t len = b->n - at - w;
    for (size_t i = 0; i < w; i++)
        b->b[at + i] = (uint8_t)(len >> (8 * (w - 1 - i)));
}

/* ---- synthetic ClientHellos ---- */

struct spec {
    unsigned rec_version;
    unsigned hs_type;
    unsigned legacy;
    size_t sid_len;
    size_t cs_len;
    const uint8_t *comp;
    size_t comp_len;
    bool no_ext_block;
    const struct bb *exts; /* raw extensions (type, length, data)*; NULL for an empty block */
};

static const uint8_t comp_null[] = {0};
#define SPEC_DEFAULT                                                                       \
    {                                                                                      \
        .rec_version = 0x0301, .hs_type = 1, .legacy = 0x0303, .sid_len = 32, .cs_len = 4, \
        .comp = comp_null, .comp_len = 1                                                   \
    }

/* The handshake message (header + body). */
static void build_hs(const struct spec *s, struct bb *hs)
{
    bb_u8(hs, s->hs_type);
    bb_open(hs, 3);
    bb_u16(hs, s->legacy);
    bb_fill(hs, 0xa5, 32);
    bb_u8(hs, (unsigned)s->sid_len);
    bb_fill(hs, 0x11, s->sid_len);
    bb_u16(hs, (unsigned)s->cs_len);
    for (size_t i = 0; i + 1 < s->cs_len; i += 2)
        bb_u16(hs, 0x1301);
    if (s->cs_len % 2)
        bb_u8(hs, 0x13);
    bb_u8(hs, (unsigned)s->comp_len);
    bb_put(hs, s->comp, s->comp_len);
    if (!s->no_ext_block) {
        bb_open(hs, 2);
        if (s->exts)
            bb_put(hs, s->exts->b, s->exts->n);
        bb_close(hs);
    }
    bb_close(hs);
}

/* Records of at most `chunk` bytes each carrying `hs`. */
static void wrap(const uint8_t *hs, size_t n, size_t chunk, unsigned version, struct bb *out)
{
    size_t off = 0;
    do {
        size_t k = n - off < chunk ? n - off : chunk;
        bb_u8(out, 22);
        bb_u16(out, version);
        bb_u16(out, (unsigned)k);
        bb_put(out, hs + off, k);
        off += k;
    } while (off < n);
}

static struct bb *build(const struct spec *s)
{
    struct bb *hs = bb_new();
    struct bb *out = bb_new();
    build_hs(s, hs);
    wrap(hs->b, hs->n, PD_TLS_RECORD_MAX, s->rec_version, out);
    free(hs);
    return out;
}

static void ext_raw(struct bb *e, unsigned type, const void *data, size_t n)
{
    bb_u16(e, type);
    bb_u16(e, (unsigned)n);
    bb_put(e, data, n);
}

static void ext_sni(struct bb *e, const char *name, size_t n)
{
    bb_u16(e, 0);
    bb_open(e, 2);
    bb_open(e, 2);
    bb_u8(e, 0);
    bb_u16(e, (unsigned)n);
    bb_put(e, name, n);
    bb_close(e);
    bb_close(e);
}

static void ext_alpn(struct bb *e, const char *const *names)
{
    bb_u16(e, 16);
    bb_open(e, 2);
    bb_open(e, 2);
    for (; *names; names++) {
        bb_u8(e, (unsigned)strlen(*names));
        bb_put(e, *names, strlen(*names));
    }
    bb_close(e);
    bb_close(e);
}

static void ext_versions(struct bb *e)
{
    static const uint8_t v[] = {6, 0x0a, 0x0a, 0x03, 0x04, 0x03, 0x03};
    ext_raw(e, 43, v, sizeof v);
}

/* The handshake stream of a record sequence (test inputs are trusted). */
static size_t hs_stream(const uint8_t *in, size_t n, uint8_t *hs)
{
    size_t pos = 0, o = 0;
    while (pos + 5 <= n) {
        size_t k = (size_t)in[pos + 3] << 8 | in[pos + 4];
        memcpy(hs + o, in + pos + 5, k);
        o += k;
        pos += 5 + k;
    }
    return o;
}

/* Re-split a hello's handshake stream into records of the given sizes (the last size repeats). */
static struct bb *refragment(const uint8_t *in, size_t n, const size_t *sizes, size_t nsizes)
{
    uint8_t *hs = malloc(n);
    assert_non_null(hs);
    size_t total = hs_stream(in, n, hs);
    unsigned version = (unsigned)in[1] << 8 | in[2];
    struct bb *out = bb_new();
    size_t off = 0, i = 0;
    while (off < total) {
        size_t k = sizes[i < nsizes ? i : nsizes - 1];
        if (k > total - off)
            k = total - off;
        bb_u8(out, 22);
        bb_u16(out, version);
        bb_u16(out, (unsigned)k);
        bb_put(out, hs + off, k);
        off += k;
        i++;
    }
    free(hs);
    return out;
}

/* ---- checks ---- */

static void assert_err_printable(const struct pd_err *err)
{
    assert_true(err->msg[0] != '\0');
    for (const char *p = err->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            fail_msg("error text has byte 0x%02x: %s", (unsigned char)*p, err->msg);
}

static bool hello_equal(const struct pd_tls_hello *a, const struct pd_tls_hello *b)
{
    return a->consumed == b->consumed && a->records == b->records &&
           a->record_version == b->record_version && a->legacy_version == b->legacy_version &&
           a->hello_len == b->hello_len && a->ext_count == b->ext_count &&
           a->has_sni == b->has_sni && strcmp(a->sni, b->sni) == 0 && a->sni_len == b->sni_len &&
           a->has_ech == b->has_ech && a->ech_type == b->ech_type && a->has_alpn == b->has_alpn &&
           a->alpn_count == b->alpn_count && a->alpn_first_len == b->alpn_first_len &&
           memcmp(a->alpn_first, b->alpn_first, a->alpn_first_len) == 0 &&
           a->has_supported_versions == b->has_supported_versions &&
           a->offers_tls13 == b->offers_tls13;
}

/* OK on the whole input; every shorter prefix NEED_MORE; extra bytes after it change nothing. */
static void expect_ok(const uint8_t *buf, size_t len, struct pd_tls_hello *h)
{
    struct pd_err err = {{0}};
    enum pd_tls_hello_status st = pd_tls_hello_parse(buf, len, h, &err);
    if (st != PD_TLS_HELLO_OK)
        fail_msg("expected ok, got %s: %s", pd_tls_hello_status_name(st), err.msg);
    assert_int_equal(h->consumed, len);
    assert_int_equal(h->has_sni, h->sni[0] != '\0');
    assert_int_equal(h->sni_len, strlen(h->sni));
    assert_int_equal(pd_tls_hello_sniff(buf, len), PD_TLS_HELLO_OK);

    struct pd_tls_hello p;
    for (size_t n = 0; n < len; n++) {
        st = pd_tls_hello_parse(buf, n, &p, &err);
        if (st != PD_TLS_HELLO_NEED_MORE)
            fail_msg("prefix %zu of %zu: expected need_more, got %s: %s", n, len,
                     pd_tls_hello_status_name(st), err.msg);
    }
    /* A ChangeCipherSpec record after the hello (TLS 1.3 middlebox compatibility) is not looked at.
     */
    uint8_t *more = malloc(len + 6);
    assert_non_null(more);
    memcpy(more, buf, len);
    memcpy(more + len, "\x14\x03\x03\x00\x01\x01", 6);
    assert_int_equal(pd_tls_hello_parse(more, len + 6, &p, &err), PD_TLS_HELLO_OK);
    assert_true(hello_equal(h, &p));
    free(more);
}

/* INVALID with `why` in the message; no prefix is OK, and once a prefix is INVALID every longer one
 * is too. */
static void expect_invalid(const uint8_t *buf, size_t len, const char *why)
{
    struct pd_err err = {{0}};
    struct pd_tls_hello h;
    memset(&h, 0x5a, sizeof h);
    enum pd_tls_hello_status st = pd_tls_hello_parse(buf, len, &h, &err);
    if (st != PD_TLS_HELLO_INVALID)
        fail_msg("expected invalid (%s), got %s", why, pd_tls_hello_status_name(st));
    if (!strstr(err.msg, why))
        fail_msg("error '%s' does not mention '%s'", err.msg, why);
    assert_err_printable(&err);
    assert_non_null(strstr(err.msg, "TLS ClientHello"));
    assert_false(h.has_sni);
    assert_string_equal(h.sni, "");
    assert_int_equal(h.consumed, 0);

    bool seen_invalid = false;
    for (size_t n = 0; n < len; n++) {
        struct pd_err e2 = {{0}};
        st = pd_tls_hello_parse(buf, n, &h, &e2);
        if (st == PD_TLS_HELLO_OK || st == PD_TLS_HELLO_NOT_TLS)
            fail_msg("prefix %zu of invalid input (%s): %s", n, why, pd_tls_hello_status_name(st));
        if (seen_invalid && st != PD_TLS_HELLO_INVALID)
            fail_msg("prefix %zu: %s after a shorter prefix was invalid", n,
                     pd_tls_hello_status_name(st));
        if (st == PD_TLS_HELLO_INVALID) {
            seen_invalid = true;
            assert_err_printable(&e2);
        }
    }
    /* Without an error sink too. */
    assert_int_equal(pd_tls_hello_parse(buf, len, &h, NULL), PD_TLS_HELLO_INVALID);
}

static void expect_invalid_bb(struct bb *b, const char *why)
{
    expect_invalid(b->b, b->n, why);
    free(b);
}

/* A hello with the given extensions (single record). */
static struct bb *with_exts(struct bb *e)
{
    struct spec s = SPEC_DEFAULT;
    s.exts = e;
    struct bb *out = build(&s);
    free(e);
    return out;
}

/* Offset of the first byte of the given extension type in a single-record hello, or 0. */
static size_t find_ext(const uint8_t *b, size_t n, unsigned type)
{
    size_t p = 5 + 4 + 2 + 32;
    p += 1 + b[p];
    p += 2 + ((size_t)b[p] << 8 | b[p + 1]);
    p += 1 + b[p];
    size_t end = p + 2 + ((size_t)b[p] << 8 | b[p + 1]);
    p += 2;
    while (p + 4 <= end && end <= n) {
        unsigned t = (unsigned)b[p] << 8 | b[p + 1];
        if (t == type)
            return p;
        p += 4 + ((size_t)b[p + 2] << 8 | b[p + 3]);
    }
    return 0;
}

/* Append one extension to a real single-record hello, fixing every enclosing length. */
static struct bb *append_ext(const uint8_t *in, size_t n, unsigned type, const void *data,
                             size_t dn)
{
    struct bb *out = bb_new();
    bb_put(out, in, n);
    ext_raw(out, type, data, dn);
    size_t add = 4 + dn;
    size_t p = 5 + 4 + 2 + 32;
    p += 1 + in[p];
    p += 2 + ((size_t)in[p] << 8 | in[p + 1]);
    p += 1 + in[p];
    size_t rec = ((size_t)in[3] << 8 | in[4]) + add;
    size_t hs = ((size_t)in[6] << 16 | (size_t)in[7] << 8 | in[8]) + add;
    size_t ext = ((size_t)in[p] << 8 | in[p + 1]) + add;
    out->b[3] = (uint8_t)(rec >> 8);
    out->b[4] = (uint8_t)rec;
    out->b[6] = (uint8_t)(hs >> 16);
    out->b[7] = (uint8_t)(hs >> 8);
    out->b[8] = (uint8_t)hs;
    out->b[p] = (uint8_t)(ext >> 8);
    out->b[p + 1] = (uint8_t)ext;
    return out;
}

/* ---- real hellos ---- */

static void test_openssl_tls13_sni_alpn(void **state)
{
    (void)state;
    struct pd_tls_hello h;
    expect_ok(ossl13_sni_alpn, sizeof ossl13_sni_alpn, &h);
    assert_true(h.has_sni);
    assert_string_equal(h.sni, "api.example.com");
    assert_int_equal(h.sni_len, 15);
    assert_true(h.has_alpn);
    assert_int_equal(h.alpn_count, 2);
    assert_int_equal(h.alpn_first_len, 2);
    assert_memory_equal(h.alpn_first, "h2", 2);
    assert_true(h.has_supported_versions);
    assert_true(h.offers_tls13);
    assert_false(h.has_ech);
    assert_int_equal(h.records, 1);
    assert_int_equal(h.record_version, 0x0301);
    assert_int_equal(h.legacy_version, 0x0303);
    assert_int_equal(h.ext_count, 11);
    assert_int_equal(h.hello_len, sizeof ossl13_sni_alpn - 9);
}

static void test_openssl_tls12_sni(void **state)
{
    (void)state;
    struct pd_tls_hello h;
    expect_ok(ossl12_sni, sizeof ossl12_sni, &h);
    assert_true(h.has_sni);
    assert_string_equal(h.sni, "www.example.org");
    assert_false(h.has_alpn);
    assert_int_equal(h.alpn_count, 0);
    assert_false(h.has_supported_versions);
    assert_false(h.offers_tls13);
    assert_int_equal(h.ext_count, 7);
}

static void test_openssl_tls10(void **state)
{
    (void)state;
    struct pd_tls_hello h;
    expect_ok(ossl10, sizeof ossl10, &h);
    assert_string_equal(h.sni, "legacy.example.net");
    assert_int_equal(h.legacy_version, 0x0301);
    assert_false(h.offers_tls13);
}

static void test_no_sni(void **state)
{
    (void)state;
    struct pd_tls_hello h;
    expect_ok(ossl13_nosni, sizeof ossl13_nosni, &h);
    assert_false(h.has_sni);
    assert_string_equal(h.sni, "");
    assert_int_equal(h.sni_len, 0);
    assert_true(h.offers_tls13);
    expect_ok(curl_ip, sizeof curl_ip, &h);
    assert_false(h.has_sni);
    assert_string_equal(h.sni, "");
    assert_true(h.has_alpn);
}

static void test_sni_canonicalised(void **state)
{
    (void)state;
    struct pd_tls_hello h;
    /* OpenSSL sends what it is given: "API.Example.COM." */
    expect_ok(ossl_upper_dot, sizeof ossl_upper_dot, &h);
    assert_true(h.has_sni);
    assert_string_equal(h.sni, "api.example.com");
    assert_int_equal(h.sni_len, 15);

    struct bb *e = bb_new();
    ext_sni(e, "WWW.Example.ORG.", 16);
    struct bb *b = with_exts(e);
    expect_ok(b->b, b->n, &h);
    assert_string_equal(h.sni, "www.example.org");
    free(b);

    /* '_' is a valid host character (host.h) */
    e = bb_new();
    ext_sni(e, "_acme.example.com", 17);
    b = with_exts(e);
    expect_ok(b->b, b->n, &h);
    assert_string_equal(h.sni, "_acme.example.com");
    free(b);

    /* the longest name: 253 characters, plus one trailing dot */
    char name[256];
    memset(name, 'a', sizeof name);
    for (size_t i = 63; i < 253; i += 64)
        name[i] = '.';
    name[253] = '.';
    e = bb_new();
    ext_sni(e, name, 254);
    b = with_exts(e);
    expect_ok(b->b, b->n, &h);
    assert_int_equal(h.sni_len, 253);
    assert_memory_equal(h.sni, name, 253);
    free(b);
}

static void test_curl(void **state)
{
    (void)state;
    struct pd_tls_hello h;
    expect_ok(curl_sni, sizeof curl_sni, &h);
    assert_string_equal(h.sni, "files.example.com");
    assert_true(h.has_alpn);
    assert_int_equal(h.alpn_count, 2);
    assert_memory_equal(h.alpn_first, "h2", 2);
    assert_true(h.offers_tls13);
    assert_int_equal(h.ext_count, 12);
}

static void test_psk_last(void **state)
{
    (void)state;
    struct pd_tls_hello h;
    expect_ok(ossl13_psk, sizeof ossl13_psk, &h);
    assert_string_equal(h.sni, "resume.example.com");
    /* anything after pre_shared_key is refused */
    struct bb *b = append_ext(ossl13_psk, sizeof ossl13_psk, 0x0015, "\0\0", 2);
    expect_invalid_bb(b, "follows pre_shared_key");
}

/* ---- fragmentation ---- */

static void check_fragmented(const uint8_t *in, size_t n, const size_t *sizes, size_t nsizes)
{
    struct pd_tls_hello whole, frag;
    struct pd_err err = {{0}};
    assert_int_equal(pd_tls_hello_parse(in, n, &whole, &err), PD_TLS_HELLO_OK);
    struct bb *b = refragment(in, n, sizes, nsizes);
    expect_ok(b->b, b->n, &frag);
    assert_true(frag.records > 1);
    assert_int_equal(frag.consumed, b->n);
    /* the same hello apart from the record framing */
    frag.records = whole.records;
    frag.consumed = whole.consumed;
    assert_true(hello_equal(&whole, &frag));
    free(b);
}

static void test_fragmented(void **state)
{
    (void)state;
    static const size_t halves[] = {170};
    static const size_t thirds[] = {100, 100};
    static const size_t split_header_1[] = {1, 200}; /* handshake header split after its type */
    static const size_t split_header_3[] = {3, 1, 50}; /* ... and after 3 of its 4 bytes */
    static const size_t small[] = {9};
    static const size_t in_sni[] = {50, 5}; /* many records through the server name */
    check_fragmented(ossl13_sni_alpn, sizeof ossl13_sni_alpn, halves, 1);
    check_fragmented(ossl13_sni_alpn, sizeof ossl13_sni_alpn, thirds, 2);
    check_fragmented(ossl13_sni_alpn, sizeof ossl13_sni_alpn, split_header_1, 2);
    check_fragmented(ossl12_sni, sizeof ossl12_sni, split_header_3, 3);
    check_fragmented(curl_sni, sizeof curl_sni, small, 1);
    check_fragmented(ossl_upper_dot, sizeof ossl_upper_dot, in_sni, 2);
    check_fragmented(ossl13_psk, sizeof ossl13_psk, thirds, 2);
}

static void test_record_limit(void **state)
{
    (void)state;
    struct pd_tls_hello h;
    /* 207 handshake bytes: 63 records of 3 and one of 18 is the most accepted; 69 records of 3 is
     * too many. */
    size_t hs_len = sizeof ossl12_sni - 5;
    size_t sizes[PD_TLS_HELLO_MAX_RECORDS];
    for (size_t i = 0; i < PD_TLS_HELLO_MAX_RECORDS; i++)
        sizes[i] = 3;
    sizes[PD_TLS_HELLO_MAX_RECORDS - 1] = hs_len - 3 * (PD_TLS_HELLO_MAX_RECORDS - 1);
    struct bb *b = refragment(ossl12_sni, sizeof ossl12_sni, sizes, PD_TLS_HELLO_MAX_RECORDS);
    expect_ok(b->b, b->n, &h);
    assert_int_equal(h.records, PD_TLS_HELLO_MAX_RECORDS);
    assert_string_equal(h.sni, "www.example.org");
    free(b);

    static const size_t threes[] = {3};
    b = refragment(ossl12_sni, sizeof ossl12_sni, threes, 1);
    expect_invalid_bb(b, "more than 64 records");
}

static void test_largest_hello(void **state)
{
    (void)state;
    /* A body of exactly PD_TLS_HELLO_MAX bytes (padding extension) needs two records. */
    struct spec s = SPEC_DEFAULT;
    struct bb *e = bb_new();
    ext_sni(e, "big.example.com", 15);
    struct bb *probe = build(&s);
    size_t base = probe->n - 9; /* body without extensions block content */
    free(probe);
    size_t pad = PD_TLS_HELLO_MAX - base - e->n - 4;
    uint8_t *zeros = calloc(1, pad);
    assert_non_null(zeros);
    ext_raw(e, 21, zeros, pad);
    s.exts = e;
    struct bb *hs = bb_new();
    build_hs(&s, hs);
    assert_int_equal(hs->n, 4 + PD_TLS_HELLO_MAX);
    struct bb *b = bb_new();
    wrap(hs->b, hs->n, PD_TLS_RECORD_MAX, 0x0303, b);
    struct pd_tls_hello h;
    struct pd_err err = {{0}};
    assert_int_equal(pd_tls_hello_parse(b->b, b->n, &h, &err), PD_TLS_HELLO_OK);
    assert_int_equal(h.hello_len, PD_TLS_HELLO_MAX);
    assert_int_equal(h.records, 2);
    assert_string_equal(h.sni, "big.example.com");
    assert_true(b->n <= PD_TLS_HELLO_WIRE_MAX);
    assert_int_equal(pd_tls_hello_parse(b->b, b->n - 1, &h, &err), PD_TLS_HELLO_NEED_MORE);
    free(b);

    /* The same hello over the most records allowed fills PD_TLS_HELLO_WIRE_MAX exactly: a caller
     * buffer of that size always reaches a verdict. */
    b = bb_new();
    wrap(hs->b, hs->n, (hs->n + PD_TLS_HELLO_MAX_RECORDS - 1) / PD_TLS_HELLO_MAX_RECORDS, 0x0303,
         b);
    assert_int_equal(b->n, PD_TLS_HELLO_WIRE_MAX);
    assert_int_equal(pd_tls_hello_parse(b->b, b->n, &h, &err), PD_TLS_HELLO_OK);
    assert_int_equal(h.records, PD_TLS_HELLO_MAX_RECORDS);
    assert_int_equal(h.consumed, PD_TLS_HELLO_WIRE_MAX);
    assert_string_equal(h.sni, "big.example.com");
    assert_int_equal(pd_tls_hello_parse(b->b, b->n - 1, &h, &err), PD_TLS_HELLO_NEED_MORE);
    free(b);
    free(hs);

    /* One byte more is refused as soon as the handshake header has arrived. */
    bb_put(e, "\0", 1);
    e->b[e->n - pad - 3] = (uint8_t)((pad + 1) >> 8);
    e->b[e->n - pad - 2] = (uint8_t)(pad + 1);
    hs = bb_new();
    build_hs(&s, hs);
    b = bb_new();
    wrap(hs->b, hs->n, PD_TLS_RECORD_MAX, 0x0303, b);
    assert_int_equal(pd_tls_hello_parse(b->b, 9, &h, &err), PD_TLS_HELLO_INVALID);
    assert_non_null(strstr(err.msg, "at most 16384"));
    expect_invalid(b->b, 64, "at most 16384");
    free(b);
    free(hs);
    free(e);
    free(zeros);
}

/* ---- NOT_TLS, sniff, trivial inputs ---- */

static void test_not_tls(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "G",
        "CONNECT a:443 HTTP/1.1\r\n\r\n",
        "\x80\x2e\x01\x00\x02", /* SSLv2-style ClientHello */
        "\x17\x03\x03\x00\x10", /* application data first */
    };
    struct pd_tls_hello h;
    struct pd_err err = {{0}};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        size_t n = strlen(inputs[i]);
        assert_int_equal(pd_tls_hello_parse((const uint8_t *)inputs[i], n, &h, &err),
                         PD_TLS_HELLO_NOT_TLS);
        assert_int_equal(pd_tls_hello_sniff((const uint8_t *)inputs[i], n), PD_TLS_HELLO_NOT_TLS);
        assert_int_equal(pd_tls_hello_parse((const uint8_t *)inputs[i], 1, &h, &err),
                         PD_TLS_HELLO_NOT_TLS);
    }
    assert_int_equal(pd_tls_hello_parse((const uint8_t *)"", 0, &h, &err), PD_TLS_HELLO_NEED_MORE);
    assert_int_equal(pd_tls_hello_parse(NULL, 0, &h, NULL), PD_TLS_HELLO_NEED_MORE);
    assert_int_equal(pd_tls_hello_sniff(NULL, 0), PD_TLS_HELLO_NEED_MORE);
    assert_int_equal(pd_tls_hello_sniff((const uint8_t *)"\x16", 1), PD_TLS_HELLO_OK);
    assert_int_equal(pd_tls_hello_parse((const uint8_t *)"\x16", 1, &h, &err),
                     PD_TLS_HELLO_NEED_MORE);
    assert_string_equal(pd_tls_hello_status_name(PD_TLS_HELLO_OK), "ok");
    assert_string_equal(pd_tls_hello_status_name(PD_TLS_HELLO_INVALID), "invalid");
    assert_string_equal(pd_tls_hello_status_name(PD_TLS_HELLO_NEED_MORE), "need_more");
    assert_string_equal(pd_tls_hello_status_name(PD_TLS_HELLO_NOT_TLS), "not_tls");
    assert_string_equal(pd_tls_hello_status_name((enum pd_tls_hello_status)42), "unknown");
}

/* ---- ECH ---- */

static void test_ech(void **state)
{
    (void)state;
    struct pd_tls_hello h;
    /* ECH outer hello: a public name in server_name, the real one encrypted in 0xfe0d. The payload
     * imitates ECHClientHello{outer, cipher suite, config id, enc, payload}. */
    uint8_t ech[64];
    memset(ech, 0x42, sizeof ech);
    ech[0] = 0;
    struct bb *b =
        append_ext(ossl13_sni_alpn, sizeof ossl13_sni_alpn, PD_TLS_EXT_ECH, ech, sizeof ech);
    expect_ok(b->b, b->n, &h);
    assert_true(h.has_ech);
    assert_int_equal(h.ech_type, PD_TLS_EXT_ECH);
    assert_string_equal(h.sni, "api.example.com");
    free(b);

    /* ECH without any server_name */
    b = append_ext(ossl13_nosni, sizeof ossl13_nosni, PD_TLS_EXT_ECH, ech, sizeof ech);
    expect_ok(b->b, b->n, &h);
    assert_true(h.has_ech);
    assert_false(h.has_sni);
    free(b);

    /* legacy ESNI and an ECH draft code point count too */
    b = append_ext(ossl13_sni_alpn, sizeof ossl13_sni_alpn, PD_TLS_EXT_ESNI, ech, 10);
    expect_ok(b->b, b->n, &h);
    assert_true(h.has_ech);
    assert_int_equal(h.ech_type, PD_TLS_EXT_ESNI);
    free(b);
    b = append_ext(ossl13_sni_alpn, sizeof ossl13_sni_alpn, 0xfe0a, ech, 0);
    expect_ok(b->b, b->n, &h);
    assert_true(h.has_ech);
    free(b);
    /* ... but not an unrelated neighbour */
    b = append_ext(ossl13_sni_alpn, sizeof ossl13_sni_alpn, 0xfe0e, ech, 3);
    expect_ok(b->b, b->n, &h);
    assert_false(h.has_ech);
    assert_int_equal(h.ech_type, 0);
    free(b);

    /* two ECH extensions are duplicates */
    struct bb *b1 = append_ext(ossl13_sni_alpn, sizeof ossl13_sni_alpn, PD_TLS_EXT_ECH, ech, 8);
    b = append_ext(b1->b, b1->n, PD_TLS_EXT_ECH, ech, 8);
    free(b1);
    expect_invalid_bb(b, "appears twice");
}

/* ---- synthetic well-formed variants ---- */

static void test_extension_block_forms(void **state)
{
    (void)state;
    struct pd_tls_hello h;
    /* no extensions at all (allowed before TLS 1.3) */
    struct spec s = SPEC_DEFAULT;
    s.no_ext_block = true;
    s.sid_len = 0;
    s.cs_len = 2;
    struct bb *b = build(&s);
    assert_int_equal(b->n, 5 + 4 + 41);
    expect_ok(b->b, b->n, &h);
    assert_int_equal(h.ext_count, 0);
    assert_false(h.has_sni);
    assert_int_equal(h.hello_len, 41);
    free(b);
    /* an empty extensions block */
    s.no_ext_block = false;
    b = build(&s);
    expect_ok(b->b, b->n, &h);
    assert_int_equal(h.ext_count, 0);
    free(b);
    /* record version 0x0303 and 0x0302, several compression methods with null among them */
    static const uint8_t comps[] = {1, 0, 64};
    s.rec_version = 0x0303;
    s.comp = comps;
    s.comp_len = 3;
    b = build(&s);
    expect_ok(b->b, b->n, &h);
    assert_int_equal(h.record_version, 0x0303);
    free(b);
    s.rec_version = 0x0302;
    s.legacy = 0x0302;
    b = build(&s);
    expect_ok(b->b, b->n, &h);
    assert_int_equal(h.legacy_version, 0x0302);
    free(b);

    /* GREASE extensions, an empty one, and ALPN/versions from the builder */
    struct bb *e = bb_new();
    ext_raw(e, 0x0a0a, "", 0);
    ext_sni(e, "x.example", 9);
    static const char *const protos[] = {"http/1.1", NULL};
    ext_alpn(e, protos);
    ext_versions(e);
    ext_raw(e, 0xfafa, "\0", 1);
    b = with_exts(e);
    expect_ok(b->b, b->n, &h);
    assert_int_equal(h.ext_count, 5);
    assert_int_equal(h.alpn_count, 1);
    assert_int_equal(h.alpn_first_len, 8);
    assert_memory_equal(h.alpn_first, "http/1.1", 8);
    assert_true(h.offers_tls13);
    free(b);

    /* supported_versions without TLS 1.3 */
    e = bb_new();
    ext_raw(e, 43, "\x04\x03\x03\x03\x02", 5);
    b = with_exts(e);
    expect_ok(b->b, b->n, &h);
    assert_true(h.has_supported_versions);
    assert_false(h.offers_tls13);
    free(b);

    /* a 255-byte ALPN name, not printable: copied as is */
    uint8_t name[255];
    for (size_t i = 0; i < sizeof name; i++)
        name[i] = (uint8_t)(i + 1);
    e = bb_new();
    bb_u16(e, 16);
    bb_open(e, 2);
    bb_open(e, 2);
    bb_u8(e, 255);
    bb_put(e, name, 255);
    bb_u8(e, 2);
    bb_put(e, "h2", 2);
    bb_close(e);
    bb_close(e);
    b = with_exts(e);
    expect_ok(b->b, b->n, &h);
    assert_int_equal(h.alpn_first_len, 255);
    assert_memory_equal(h.alpn_first, name, 255);
    assert_int_equal(h.alpn_count, 2);
    free(b);
}

/* ---- malformed: records and handshake header ---- */

static void test_bad_records(void **state)
{
    (void)state;
    uint8_t b[sizeof ossl12_sni + 16];
    /* SSLv3 record version */
    memcpy(b, ossl12_sni, sizeof ossl12_sni);
    b[2] = 0x00;
    expect_invalid(b, sizeof ossl12_sni, "SSL 3.0");
    /* TLS 1.3 is never a record version; nor is major 2 */
    b[2] = 0x04;
    expect_invalid(b, sizeof ossl12_sni, "record version 0x0304");
    b[1] = 0x02;
    b[2] = 0x01;
    expect_invalid(b, sizeof ossl12_sni, "major byte 2");
    /* empty and oversize records */
    expect_invalid((const uint8_t *)"\x16\x03\x01\x00\x00\x01\x00\x00\x30", 9,
                   "empty handshake record");
    expect_invalid((const uint8_t *)"\x16\x03\x01\x40\x01\x01\x00\x00\x30", 9, "length 16385");
    /* the record is longer than the hello: bytes after the ClientHello in its last record */
    memcpy(b, ossl12_sni, sizeof ossl12_sni);
    b[4] = (uint8_t)(b[4] + 2);
    b[sizeof ossl12_sni] = 0x14;
    b[sizeof ossl12_sni + 1] = 0x00;
    expect_invalid(b, sizeof ossl12_sni + 2, "past the end of the ClientHello");
    /* ... also when the record that overshoots is a later one */
    static const size_t sizes[] = {100};
    struct bb *f = refragment(ossl12_sni, sizeof ossl12_sni, sizes, 1);
    size_t last = f->n - (sizeof ossl12_sni - 5 - 200) - 5; /* header of the third record */
    f->b[last + 4] = (uint8_t)(f->b[last + 4] + 1);
    bb_u8(f, 0);
    expect_invalid_bb(f, "past the end of the ClientHello");
    /* a record of another content type in the middle of the hello */
    f = refragment(ossl12_sni, sizeof ossl12_sni, sizes, 1);
    f->b[5 + 100] = 0x17;
    expect_invalid_bb(f, "content type 23");
    f = refragment(ossl12_sni, sizeof ossl12_sni, sizes, 1);
    f->b[5 + 100] = 0x14; /* ChangeCipherSpec in the middle */
    expect_invalid_bb(f, "content type 20");
    /* a later record with SSLv3 version */
    f = refragment(ossl12_sni, sizeof ossl12_sni, sizes, 1);
    f->b[5 + 100 + 2] = 0x00;
    expect_invalid_bb(f, "record 2: SSL 3.0");
}

static void test_bad_handshake_header(void **state)
{
    (void)state;
    uint8_t b[sizeof ossl12_sni];
    memcpy(b, ossl12_sni, sizeof b);
    b[5] = 2; /* server_hello */
    expect_invalid(b, sizeof b, "handshake message type 2");
    b[5] = 0;
    expect_invalid(b, 6, "handshake message type 0");
    /* the type in its own record */
    static const size_t one[] = {1, 300};
    struct bb *f = refragment(ossl12_sni, sizeof ossl12_sni, one, 2);
    f->b[5] = 16;
    expect_invalid_bb(f, "handshake message type 16");
    /* oversize and undersize bodies */
    expect_invalid((const uint8_t *)"\x16\x03\x01\x00\x04\x01\x00\x40\x01", 9, "at most 16384");
    expect_invalid((const uint8_t *)"\x16\x03\x01\x00\x04\x01\xff\xff\xff", 9, "at most 16384");
    expect_invalid((const uint8_t *)"\x16\x03\x01\x00\x04\x01\x00\x00\x28", 9, "at least 41");
    expect_invalid((const uint8_t *)"\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9, "at least 41");
    /* handshake length shorter than the body the record carries */
    memcpy(b, ossl12_sni, sizeof b);
    b[8] = (uint8_t)(b[8] - 1);
    expect_invalid(b, sizeof b, "past the end of the ClientHello");
}

/* ---- malformed: body ---- */

static void test_bad_body(void **state)
{
    (void)state;
    struct spec s = SPEC_DEFAULT;
    s.legacy = 0x0300;
    expect_invalid_bb(build(&s), "SSL 3.0 is refused");
    s.legacy = 0x0304;
    expect_invalid_bb(build(&s), "legacy_version 0x0304");
    s = (struct spec)SPEC_DEFAULT;
    s.sid_len = 33;
    expect_invalid_bb(build(&s), "session_id length 33");
    s = (struct spec)SPEC_DEFAULT;
    s.cs_len = 3;
    expect_invalid_bb(build(&s), "cipher_suites length 3");
    s.cs_len = 0;
    s.sid_len = 32;
    expect_invalid_bb(build(&s), "cipher_suites length 0");
    s = (struct spec)SPEC_DEFAULT;
    s.comp_len = 0;
    expect_invalid_bb(build(&s), "compression_methods is empty");
    static const uint8_t deflate[] = {1};
    s.comp = deflate;
    s.comp_len = 1;
    expect_invalid_bb(build(&s), "does not offer null");

    /* a length that overruns the body: cipher suites longer than the message */
    s = (struct spec)SPEC_DEFAULT;
    struct bb *b = build(&s);
    b->b[5 + 4 + 2 + 32 + 1 + 32] = 0x01; /* cipher_suites length 0x0104 */
    expect_invalid_bb(b, "cipher_suites length 260 overruns the ClientHello body");
    /* session id length past the end: a 41-byte body whose session_id claims 32 bytes */
    s.no_ext_block = true;
    s.sid_len = 0;
    s.cs_len = 2;
    b = build(&s);
    b->b[5 + 4 + 2 + 32] = 32;
    expect_invalid_bb(b, "session_id length 32 overruns");
}

static void test_bad_extensions_block(void **state)
{
    (void)state;
    struct spec s = SPEC_DEFAULT;
    struct bb *e = bb_new();
    ext_sni(e, "a.example", 9);
    s.exts = e;
    struct bb *b = build(&s);
    size_t ext_len_at = 5 + 4 + 2 + 32 + 1 + 32 + 2 + 4 + 1 + 1;
    /* extensions length overrunning the body */
    b->b[ext_len_at + 1] = (uint8_t)(b->b[ext_len_at + 1] + 1);
    expect_invalid(b->b, b->n,
                   "extensions block length 19 overruns the ClientHello body (18 bytes left)");
    /* ... or shorter than the rest of the body */
    b->b[ext_len_at + 1] = (uint8_t)(b->b[ext_len_at + 1] - 2);
    expect_invalid(b->b, b->n, "leaves 1 byte unused");
    free(b);
    free(e);
    /* a single byte where the extensions length should be */
    s.exts = NULL;
    s.no_ext_block = true;
    struct bb *hs = bb_new();
    build_hs(&s, hs);
    bb_u8(hs, 0);
    hs->b[3] = (uint8_t)(hs->b[3] + 1);
    b = bb_new();
    wrap(hs->b, hs->n, PD_TLS_RECORD_MAX, 0x0301, b);
    expect_invalid_bb(b, "extensions length (2 bytes) overruns the ClientHello body (1 byte left)");
    free(hs);
    /* an extension whose length overruns the block */
    e = bb_new();
    ext_raw(e, 23, "", 0);
    bb_u16(e, 21);
    bb_u16(e, 10);
    bb_put(e, "abc", 3);
    expect_invalid_bb(with_exts(e),
                      "extension length 10 overruns the extensions block (3 bytes left)");
    /* an extension header cut by the end of the block */
    e = bb_new();
    ext_raw(e, 23, "", 0);
    bb_u16(e, 21);
    bb_u8(e, 0);
    expect_invalid_bb(with_exts(e),
                      "extension length (2 bytes) overruns the extensions block (1 byte left)");
    /* duplicate extension, for a skipped type and for server_name */
    e = bb_new();
    ext_raw(e, 23, "", 0);
    ext_sni(e, "a.example", 9);
    ext_raw(e, 23, "", 0);
    expect_invalid_bb(with_exts(e), "extension type 0x0017 appears twice");
    e = bb_new();
    ext_sni(e, "a.example", 9);
    ext_sni(e, "a.example", 9);
    expect_invalid_bb(with_exts(e), "extension type 0x0000 appears twice");
    /* duplicate in a real hello */
    size_t at = find_ext(curl_sni, sizeof curl_sni, 0x0017);
    assert_true(at > 0);
    b = append_ext(curl_sni, sizeof curl_sni, 0x0017, "", 0);
    expect_invalid_bb(b, "extension type 0x0017 appears twice");
    /* pre_shared_key not last */
    e = bb_new();
    ext_raw(e, 41, "\0\0\0\0", 4);
    ext_sni(e, "a.example", 9);
    expect_invalid_bb(with_exts(e), "expected pre_shared_key to be the last extension");
}

/* ---- malformed: server_name ---- */

static void test_bad_sni(void **state)
{
    (void)state;
    struct bb *e;
    /* zero-length host_name */
    e = bb_new();
    ext_sni(e, "", 0);
    expect_invalid_bb(with_exts(e), "host_name is empty");
    /* empty extension, empty list */
    e = bb_new();
    ext_raw(e, 0, "", 0);
    expect_invalid_bb(with_exts(e), "server_name extension is empty");
    e = bb_new();
    ext_raw(e, 0, "\0\0", 2);
    expect_invalid_bb(with_exts(e), "server_name_list is empty");
    /* two host_name entries */
    e = bb_new();
    bb_u16(e, 0);
    bb_open(e, 2);
    bb_open(e, 2);
    bb_u8(e, 0);
    bb_u16(e, 9);
    bb_put(e, "a.example", 9);
    bb_u8(e, 0);
    bb_u16(e, 12);
    bb_put(e, "evil.example", 12);
    bb_close(e);
    bb_close(e);
    expect_invalid_bb(with_exts(e), "expected exactly one host_name entry");
    /* an entry of another type */
    e = bb_new();
    ext_raw(e, 0, "\x00\x06\x01\x00\x03\x61\x62\x63", 8);
    expect_invalid_bb(with_exts(e), "server_name entry of type 1");
    /* list length overrunning the extension, or shorter than it */
    e = bb_new();
    ext_raw(e, 0, "\x00\x0d\x00\x00\x09\x61\x2e\x65\x78\x61\x6d\x70\x6c\x65", 14);
    expect_invalid_bb(with_exts(e),
                      "server_name_list length 13 overruns the server_name extension");
    e = bb_new();
    ext_raw(e, 0, "\x00\x0b\x00\x00\x08\x61\x2e\x65\x78\x61\x6d\x70\x6c\x65", 14);
    expect_invalid_bb(with_exts(e),
                      "server_name_list leaves 1 byte unused in the server_name extension");
    /* host_name length overrunning the list */
    e = bb_new();
    ext_raw(e, 0, "\x00\x0c\x00\x00\x0a\x61\x2e\x65\x78\x61\x6d\x70\x6c\x65", 14);
    expect_invalid_bb(with_exts(e),
                      "host_name length 10 overruns the server_name_list (9 bytes left)");
    /* list ends inside the entry header */
    e = bb_new();
    ext_raw(e, 0, "\x00\x02\x00\x00", 4);
    expect_invalid_bb(with_exts(e), "host_name length (2 bytes) overruns the server_name_list");
    /* IP literals in several spellings */
    static const char *const ips[] = {"127.0.0.1",  "10.0.0.1.", "0x7f.1",
                                      "2130706433", "::1",       "[::1]"};
    for (size_t i = 0; i < sizeof ips / sizeof ips[0]; i++) {
        e = bb_new();
        ext_sni(e, ips[i], strlen(ips[i]));
        expect_invalid_bb(with_exts(e), "IP address literal");
    }
    /* bad characters, bad dots, too long; the error shows them escaped, never raw */
    e = bb_new();
    ext_sni(e,
            "a\x01"
            "b.example",
            10);
    struct bb *b = with_exts(e);
    expect_invalid(b->b, b->n, "server_name");
    struct pd_err err = {{0}};
    struct pd_tls_hello h;
    assert_int_equal(pd_tls_hello_parse(b->b, b->n, &h, &err), PD_TLS_HELLO_INVALID);
    assert_non_null(strstr(err.msg, "\\x01"));
    free(b);
    e = bb_new();
    ext_sni(e, "a.example\0", 10);
    expect_invalid_bb(with_exts(e), "server_name");
    e = bb_new();
    ext_sni(e, "a b.example", 11);
    expect_invalid_bb(with_exts(e), "server_name");
    e = bb_new();
    ext_sni(e, "caf\xc3\xa9.example", 13);
    expect_invalid_bb(with_exts(e), "server_name");
    e = bb_new();
    ext_sni(e, "example.com..", 13);
    expect_invalid_bb(with_exts(e), "server_name");
    e = bb_new();
    ext_sni(e, ".", 1);
    expect_invalid_bb(with_exts(e), "server_name");
    e = bb_new();
    ext_sni(e, "-a.example", 10);
    expect_invalid_bb(with_exts(e), "server_name");
    char name[300];
    memset(name, 'a', sizeof name);
    for (size_t i = 63; i < sizeof name; i += 64)
        name[i] = '.';
    e = bb_new();
    ext_sni(e, name, 255);
    expect_invalid_bb(with_exts(e), "host_name is 255 bytes; expected at most 253");
    e = bb_new();
    ext_sni(e, name, 254); /* 254 without a trailing dot: host.h refuses it */
    expect_invalid_bb(with_exts(e), "server_name");
    /* the same bad name inside a real hello: the IP literal an agent might try */
    size_t at = find_ext(ossl13_sni_alpn, sizeof ossl13_sni_alpn, 0);
    assert_true(at > 0);
    uint8_t r[sizeof ossl13_sni_alpn];
    memcpy(r, ossl13_sni_alpn, sizeof r);
    memcpy(r + at + 9, "192.168.0.10.00", 15); /* same length as api.example.com */
    expect_invalid(r, sizeof r, "server_name");
    memcpy(r + at + 9, "169.254.169.254", 15);
    expect_invalid(r, sizeof r, "IP address literal");
}

/* ---- malformed: ALPN, supported_versions ---- */

static void test_bad_alpn_versions(void **state)
{
    (void)state;
    struct bb *e;
    e = bb_new();
    ext_raw(e, 16, "\0\0", 2);
    expect_invalid_bb(with_exts(e), "protocol_name_list is empty");
    e = bb_new();
    ext_raw(e, 16, "", 0);
    expect_invalid_bb(with_exts(e),
                      "protocol_name_list length (2 bytes) overruns the ALPN extension");
    e = bb_new();
    ext_raw(e, 16, "\x00\x04\x02h2\x00", 6);
    expect_invalid_bb(with_exts(e), "ALPN protocol name 2 is empty");
    e = bb_new();
    ext_raw(e, 16, "\x00\x03\x03h2", 5);
    expect_invalid_bb(with_exts(e), "protocol name length 3 overruns the protocol_name_list");
    e = bb_new();
    ext_raw(e, 16, "\x00\x03\x02h2\x00", 6);
    expect_invalid_bb(with_exts(e), "protocol_name_list leaves 1 byte unused");
    e = bb_new();
    ext_raw(e, 43, "\x03\x03\x04\x03", 4);
    expect_invalid_bb(with_exts(e), "supported_versions list is 3 bytes");
    e = bb_new();
    ext_raw(e, 43, "\x00", 1);
    expect_invalid_bb(with_exts(e), "supported_versions list is 0 bytes");
    e = bb_new();
    ext_raw(e, 43, "\x04\x03\x04", 3);
    expect_invalid_bb(with_exts(e), "supported_versions list length 4 overruns");
    e = bb_new();
    ext_raw(e, 43, "\x02\x03\x04\x00", 4);
    expect_invalid_bb(with_exts(e), "supported_versions list leaves 1 byte unused");
}

/* ---- truncation: every real hello with its declared lengths cut is INVALID, never NEED_MORE ----
 */

static void test_truncated_lengths(void **state)
{
    (void)state;
    /* Shorten the record and handshake lengths by k bytes: the body's own lengths now overrun. */
    for (size_t k = 1; k < 40; k++) {
        uint8_t b[sizeof curl_sni];
        memcpy(b, curl_sni, sizeof b);
        size_t rec = ((size_t)b[3] << 8 | b[4]) - k;
        size_t hs = rec - 4;
        b[3] = (uint8_t)(rec >> 8);
        b[4] = (uint8_t)rec;
        b[6] = 0;
        b[7] = (uint8_t)(hs >> 8);
        b[8] = (uint8_t)hs;
        expect_invalid(b, 5 + rec, "overruns");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openssl_tls13_sni_alpn),
        cmocka_unit_test(test_openssl_tls12_sni),
        cmocka_unit_test(test_openssl_tls10),
        cmocka_unit_test(test_no_sni),
        cmocka_unit_test(test_sni_canonicalised),
        cmocka_unit_test(test_curl),
        cmocka_unit_test(test_psk_last),
        cmocka_unit_test(test_fragmented),
        cmocka_unit_test(test_record_limit),
        cmocka_unit_test(test_largest_hello),
        cmocka_unit_test(test_not_tls),
        cmocka_unit_test(test_ech),
        cmocka_unit_test(test_extension_block_forms),
        cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_bad_handshake_header),
        cmocka_unit_test(test_bad_body),
        cmocka_unit_test(test_bad_extensions_block),
        cmocka_unit_test(test_bad_sni),
        cmocka_unit_test(test_bad_alpn_versions),
        cmocka_unit_test(test_truncated_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
