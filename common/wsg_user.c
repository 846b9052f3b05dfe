/* wsg_user: the user-id rule (see wsg_user.h). */
#include "wsg_user.h"

#include <string.h>

#include "wsg_utf8.h"

int wsg_user_id_valid(const char *s, size_t n)
{
    if (!s || n == 0 || n > WSG_USER_ID_MAX || !wsg_utf8_valid((const unsigned char *)s, n))
        return 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        if (u[i] < 0x20 || u[i] == 0x7F)
            return 0;
        /* In well-formed UTF-8, C2 is always a lead byte and C2 80..C2 9F are exactly the C1
         * controls. */
        if (u[i] == 0xC2 && u[i + 1] <= 0x9F)
            return 0;
    }
    return 1;
}

int wsg_user_id_str_valid(const char *s)
{
    return s && wsg_user_id_valid(s, strnlen(s, WSG_USER_ID_MAX + 1));
}
