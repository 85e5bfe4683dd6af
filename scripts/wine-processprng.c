/*
 * bcryptprimitives.dll for Wine 8.0 (Debian 12), which has the DLL but not its ProcessPrng:
 * Rust's std imports ProcessPrng for its random numbers (HashMap seeds), so without it every
 * Rust test executable fails to load under Wine (exit status 53, no output). This stand-in
 * exports ProcessPrng over RtlGenRandom (advapi32's SystemFunction036), which Wine has.
 * Built and put on WINEPATH by scripts/wine-tests.sh; never part of the library.
 */
#include <windows.h>

BOOLEAN NTAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI
ProcessPrng(PBYTE data, SIZE_T length)
{
	while (length > 0) {
		ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;

		if (!SystemFunction036(data, chunk))
			return FALSE;
		data += chunk;
		length -= chunk;
	}
	return TRUE;
}
