/* Monotonic and wall-clock milliseconds. */
#ifndef HA_CLOCK_H
#define HA_CLOCK_H

#include <stdint.h>

uint64_t ha_now_ms(void);  /* CLOCK_MONOTONIC */
uint64_t ha_unix_ms(void); /* CLOCK_REALTIME */

#endif
