namespace ActorSim.Domain.Kernel;

/// <summary>Linux errno values (include/uapi/asm-generic/errno-base.h, errno.h). The kernel returns
/// them negated; we store the positive value and print <c>-EINVAL</c> where the kernel would.</summary>
public enum Errno
{
    None = 0,
    E2BIG = 7,
    ENOEXEC = 8,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    ENODEV = 19,
    EINVAL = 22,
    ENOSYS = 38,
    EOVERFLOW = 75,
}

public static class ErrnoNames
{
    public static bool TryParse(string name, out Errno errno) =>
        Enum.TryParse(name, ignoreCase: false, out errno) && errno != Errno.None && Enum.IsDefined(errno);
}
