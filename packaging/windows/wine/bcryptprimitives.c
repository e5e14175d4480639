/* For the wine tests only, never shipped. Go 1.22 and later get their randomness from
 * bcryptprimitives.dll's ProcessPrng (Windows 10 and later have it); wine 8.0 (Debian 12)
 * has no such DLL, and every Go program dies at start ("bcryptprimitives.dll not found").
 * This stand-in exports ProcessPrng on top of advapi32's RtlGenRandom (SystemFunction036),
 * which wine implements. Built with x86_64-w64-mingw32-gcc -shared ... -ladvapi32 and copied
 * into the test prefix's system32. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
