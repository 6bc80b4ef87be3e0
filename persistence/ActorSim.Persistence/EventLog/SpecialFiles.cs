using System.Runtime.InteropServices;

namespace ActorSim.Persistence.EventLog;

/// <summary>Whether a path names something other than a regular file or a directory: a character device
/// (<c>/dev/null</c>), a pipe (<c>/dev/stdout</c> piped on), a FIFO, a socket. An event log is written
/// into such a file as it is, never moved over it: <c>actorsim export -o /dev/null</c>, run as root,
/// replaced the device with a regular file (the finished log, written beside it, was renamed over it).
/// Linux's <c>statx</c>, whose buffer has the same layout on every architecture; elsewhere, or if it
/// cannot tell, a path is taken for a regular file, as before.</summary>
public static partial class SpecialFiles
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;
    private const int ModeOffset = 28; // struct statx: u32 stx_mask, u32 stx_blksize, u64 stx_attributes, u32 stx_nlink, u32 stx_uid, u32 stx_gid, u16 stx_mode
    private const int TypeMask = 0xF000, Regular = 0x8000, Directory = 0x4000;

    public static bool IsSpecial(string path) =>
        Stat(path) is { } st && (BitConverter.ToUInt16(st, ModeOffset) & TypeMask) is not (Regular or Directory); // not there: a new regular file

    /// <summary>Whether <paramref name="a"/> and <paramref name="b"/> are one regular file: the same device
    /// and inode (a hard link, a symbolic link, "./x" and "x"), or the same full path when either is not
    /// there yet. A device or a pipe named twice is not (writing into it twice is what it is for).
    /// <c>scenario --junit S.yaml S.yaml</c> replaced the scenario with its report before reading it.</summary>
    public static bool SameFile(string a, string b)
    {
        if (string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal)) return !IsSpecial(a);
        static (uint, uint, ulong, int)? Identity(string path) => Stat(path) is { } st
            ? (BitConverter.ToUInt32(st, DevMajorOffset), BitConverter.ToUInt32(st, DevMajorOffset + 4), BitConverter.ToUInt64(st, InoOffset), BitConverter.ToUInt16(st, ModeOffset) & TypeMask)
            : null;
        return Identity(a) is { } x && Identity(b) is { } y && x == y && x.Item4 == Regular;
    }

    /// <summary>Whether an output at <paramref name="path"/> is written into as it is, never replaced by a
    /// finished file moved over it nor removed: a special file (<see cref="IsSpecial"/>), or a name of one of
    /// this process's descriptors (<see cref="Descriptor"/>) whatever it is open on.</summary>
    public static bool WritesInPlace(string path) => Descriptor(path) is not null || IsSpecial(path);

    /// <summary>The descriptor of this process that <paramref name="path"/> names, when it is open:
    /// <c>/dev/stdin</c>, <c>/dev/stdout</c>, <c>/dev/stderr</c>, <c>/dev/fd/N</c>, <c>/proc/self/fd/N</c>,
    /// <c>/proc/PID/fd/N</c>, or a symbolic link to one of them. Such a name stands for the descriptor, not
    /// for the file it is open on: with the standard output sent to a file (<c>&gt; log.jsonl</c>),
    /// <c>export -o /dev/stdout</c> took /dev/stdout for that regular file and, as root, replaced the
    /// /dev/stdout link with the finished log (the rename replaces the link, not what it leads to).</summary>
    public static int? Descriptor(string path)
    {
        if (!OperatingSystem.IsLinux() || path.Length == 0) return null;
        var p = Path.GetFullPath(path);
        for (var links = 0; links < 40; links++) // Linux's limit on links followed (MAXSYMLINKS)
        {
            var m = DescriptorName().Match(p);
            if (m.Success)
            {
                if (m.Groups["pid"].Success && m.Groups["pid"].Value != $"{Environment.ProcessId}") return null; // another process's
                int? fd = m.Groups["std"].Value switch { "in" => 0, "out" => 1, "err" => 2, _ => int.TryParse(m.Groups["fd"].Value, out var n) ? n : null };
                return fd is not null && Stat($"/proc/self/fd/{fd}") is not null ? fd : null; // open (what it is open on is there)
            }
            FileSystemInfo? target;
            try
            {
                target = File.ResolveLinkTarget(p, returnFinalTarget: false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
            if (target is null) return null;
            p = target.FullName; // (a relative link's target taken from the link's directory)
        }
        return null;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^(/dev/std(?<std>in|out|err)|/dev/fd/(?<fd>[0-9]+)|/proc/(self|thread-self|(?<pid>[0-9]+))/fd/(?<fd>[0-9]+))$")]
    private static partial System.Text.RegularExpressions.Regex DescriptorName();

    /// <summary>A stream writing into <paramref name="path"/>'s descriptor when it names one
    /// (<see cref="Descriptor"/>), else null. It writes at the descriptor's own offset, as the shell left it
    /// (appending after <c>&gt;&gt;</c>), where opening the path again wrote from the file's start, over what
    /// the process wrote there meanwhile; the descriptor stays open.</summary>
    public static Stream? OpenDescriptor(string path) => Descriptor(path) is { } fd ? new DescriptorStream(fd) : null;

    /// <summary>Whether a write failed because the pipe's reader has gone (EPIPE): <c>export -o /dev/stdout | head</c>.</summary>
    public static bool IsBrokenPipe(Exception e) => e is IOException { HResult: DescriptorStream.EPIPE };

    private const uint StatxIno = 0x100;
    private const int InoOffset = 32, DevMajorOffset = 136; // u64 stx_ino after stx_mode and a u16; u32 stx_dev_major, stx_dev_minor after 4 timestamps and rdev

    /// <summary>The <c>struct statx</c> of <paramref name="path"/> (type, inode, device), or null when it
    /// is not there, or this is not Linux, or its C library has no statx (glibc before 2.28).</summary>
    private static byte[]? Stat(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        var buffer = new byte[256];
        try
        {
            return Statx(AtFdCwd, path, 0, StatxType | StatxIno, buffer) == 0 ? buffer : null;
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
    }

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int Statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);
}
