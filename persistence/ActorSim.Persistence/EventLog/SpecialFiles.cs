using System.Runtime.InteropServices;

namespace ActorSim.Persistence.EventLog;

/// <summary>Whether a path names something other than a regular file or a directory: a character device
/// (<c>/dev/null</c>), a pipe (<c>/dev/stdout</c> piped on), a FIFO, a socket. An event log is written
/// into such a file as it is, never moved over it: <c>actorsim export -o /dev/null</c>, run as root,
/// replaced the device with a regular file (the finished log, written beside it, was renamed over it).
/// Linux's <c>statx</c>, whose buffer has the same layout on every architecture; elsewhere, or if it
/// cannot tell, a path is taken for a regular file, as before.</summary>
public static class SpecialFiles
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;
    private const int ModeOffset = 28; // struct statx: u32 stx_mask, u32 stx_blksize, u64 stx_attributes, u32 stx_nlink, u32 stx_uid, u32 stx_gid, u16 stx_mode
    private const int TypeMask = 0xF000, Regular = 0x8000, Directory = 0x4000;

    public static bool IsSpecial(string path)
    {
        if (!OperatingSystem.IsLinux()) return false;
        var buffer = new byte[256];
        try
        {
            if (Statx(AtFdCwd, path, 0, StatxType, buffer) != 0) return false; // not there yet: a new regular file
        }
        catch (EntryPointNotFoundException)
        {
            return false; // a C library without statx (glibc before 2.28)
        }
        var type = BitConverter.ToUInt16(buffer, ModeOffset) & TypeMask;
        return type is not (Regular or Directory);
    }

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int Statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);
}
