using System.Text;

namespace ActorSim.Domain.Kernel;

/// <summary><c>vm_flags</c> bits with the kernel's values (include/linux/mm.h, v6.12; kernel-model.md §1).
/// <see cref="VM_ALLOW_ANY_UNCACHED"/> is the 64-bit value; use <see cref="VmFlagBits.AllowAnyUncached"/>
/// for the word-size-dependent one.</summary>
[Flags]
public enum VmFlags : ulong
{
    VM_NONE = 0,
    VM_READ = 0x00000001,
    VM_WRITE = 0x00000002,
    VM_EXEC = 0x00000004,
    VM_SHARED = 0x00000008,
    VM_MAYREAD = 0x00000010,
    VM_MAYWRITE = 0x00000020,
    VM_MAYEXEC = 0x00000040,
    VM_MAYSHARE = 0x00000080,
    VM_GROWSDOWN = 0x00000100,
    VM_UFFD_MISSING = 0x00000200,
    VM_PFNMAP = 0x00000400,
    VM_UFFD_WP = 0x00001000,
    VM_LOCKED = 0x00002000,
    VM_IO = 0x00004000,
    VM_SEQ_READ = 0x00008000,
    VM_RAND_READ = 0x00010000,
    VM_DONTCOPY = 0x00020000,
    VM_DONTEXPAND = 0x00040000,
    VM_LOCKONFAULT = 0x00080000,
    VM_ACCOUNT = 0x00100000,
    VM_NORESERVE = 0x00200000,
    VM_HUGETLB = 0x00400000,
    VM_SYNC = 0x00800000,
    VM_ARCH_1 = 0x01000000,
    VM_WIPEONFORK = 0x02000000,
    VM_DONTDUMP = 0x04000000,
    VM_SOFTDIRTY = 0x08000000,
    VM_MIXEDMAP = 0x10000000,
    VM_HUGEPAGE = 0x20000000,
    VM_NOHUGEPAGE = 0x40000000,
    VM_MERGEABLE = 0x80000000,
    VM_HIGH_ARCH_0 = 1UL << 32,
    VM_HIGH_ARCH_1 = 1UL << 33,
    VM_HIGH_ARCH_2 = 1UL << 34,
    VM_HIGH_ARCH_3 = 1UL << 35,
    /// <summary>arm64 VM_MTE = VM_HIGH_ARCH_4.</summary>
    VM_MTE = 1UL << 36,
    /// <summary>arm64 VM_MTE_ALLOWED = VM_HIGH_ARCH_5.</summary>
    VM_MTE_ALLOWED = 1UL << 37,
    /// <summary>VM_UFFD_MINOR: bit 38 in v6.12 (moved to 41 by a 2025 fix); we model v6.12.</summary>
    VM_UFFD_MINOR = 1UL << 38,
    /// <summary>Added by 5c656fcdd6c6 "mm: Introduce new flag to indicate wc safe" (v6.9); bit 39 on
    /// CONFIG_64BIT, VM_NONE otherwise.</summary>
    VM_ALLOW_ANY_UNCACHED = 1UL << 39,
    VM_DROPPABLE = 1UL << 40,
    VM_SEALED = 1UL << 63,

    /// <summary>VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP.</summary>
    VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP,
}

/// <summary>Word size of the modelled kernel. arm64 KVM exists only on 64-bit.</summary>
public enum WordSize { Bits64 = 64, Bits32 = 32 }

public static class VmFlagBits
{
    /// <summary><c>#ifdef CONFIG_64BIT VM_ALLOW_ANY_UNCACHED BIT(39) #else VM_NONE</c>.</summary>
    public static VmFlags AllowAnyUncached(WordSize wordSize) =>
        wordSize == WordSize.Bits64 ? VmFlags.VM_ALLOW_ANY_UNCACHED : VmFlags.VM_NONE;

    /// <summary>The flags an unsigned long can hold on this word size (upper 32 bits vanish on 32-bit).</summary>
    public static VmFlags Truncate(VmFlags flags, WordSize wordSize) =>
        wordSize == WordSize.Bits64 ? flags : (VmFlags)((ulong)flags & 0xFFFF_FFFFUL);

    public static bool Has(this VmFlags flags, VmFlags bit) => (flags & bit) == bit && bit != 0;
    public static bool HasAny(this VmFlags flags, VmFlags bits) => (flags & bits) != 0;

    /// <summary>The single-bit flag names (no VM_NONE, no masks), in bit order.</summary>
    public static IReadOnlyList<VmFlags> SingleBits { get; } = Enum.GetValues<VmFlags>()
        .Where(f => f != 0 && ((ulong)f & ((ulong)f - 1)) == 0).Distinct().OrderBy(f => (ulong)f).ToArray();

    public static bool TryParse(string name, out VmFlags flag)
    {
        flag = VmFlags.VM_NONE;
        if (!name.StartsWith("VM_", StringComparison.Ordinal)) return false;
        return Enum.TryParse(name, ignoreCase: false, out flag) && Enum.IsDefined(flag);
    }

    /// <summary>Flag names of the set bits, in bit order ("VM_READ", ...).</summary>
    public static IReadOnlyList<string> Names(VmFlags flags)
    {
        var names = new List<string>();
        for (var i = 0; i < 64; i++)
        {
            var bit = (VmFlags)(1UL << i);
            if (!flags.Has(bit)) continue;
            names.Add(Enum.IsDefined(bit) ? bit.ToString() : $"0x{1UL << i:x}");
        }
        return names;
    }
}

/// <summary>The <c>VmFlags:</c> line of /proc/PID/smaps (fs/proc/task_mmu.c show_smap_vma_flags,
/// v6.12): a 64-entry table defaulting to "??", named flags overwrite their entry, empty entries are
/// skipped, each set bit prints "mnemonic ".</summary>
public static class Smaps
{
    private static readonly string[] Mnemonics = BuildTable();

    private static string[] BuildTable()
    {
        var t = Enumerable.Repeat("??", 64).ToArray();
        void Set(int bit, string m) => t[bit] = m;
        Set(0, "rd"); Set(1, "wr"); Set(2, "ex"); Set(3, "sh"); Set(4, "mr"); Set(5, "mw"); Set(6, "me");
        Set(7, "ms"); Set(8, "gd"); Set(9, "um"); Set(10, "pf"); Set(12, "uw"); Set(13, "lo"); Set(14, "io");
        Set(15, "sr"); Set(16, "rr"); Set(17, "dc"); Set(18, "de"); Set(19, "lf"); Set(20, "ac"); Set(21, "nr");
        Set(22, "ht"); Set(23, "sf");
        // VM_ARCH_1: "ar"; on arm64 with CONFIG_ARM64_BTI the later [ilog2(VM_ARM64_BTI)] = "bt" wins.
        Set(24, "bt");
        Set(25, "wf"); Set(26, "dd"); Set(27, "sd"); Set(28, "mm"); Set(29, "hg"); Set(30, "nh"); Set(31, "mg");
        // VM_HIGH_ARCH_0..3: protection-key bits, entries "" under CONFIG_ARCH_HAS_PKEYS (never printed).
        Set(32, ""); Set(33, ""); Set(34, ""); Set(35, "");
        Set(36, "mt");   // VM_MTE (CONFIG_ARM64_MTE)
        Set(37, "");     // VM_MTE_ALLOWED: never printed
        Set(38, "ui");   // VM_UFFD_MINOR (v6.12 bit)
        // bit 39 VM_ALLOW_ANY_UNCACHED: no mnemonic in any version checked -> "??"
        Set(40, "dp");   // VM_DROPPABLE
        Set(63, "sl");   // VM_SEALED
        return t;
    }

    public static string MnemonicOf(int bit) => Mnemonics[bit];

    /// <summary>The mnemonics as /proc prints them after "VmFlags:": each followed by a space.</summary>
    public static string VmFlagsLine(VmFlags flags)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < 64; i++)
        {
            if (Mnemonics[i].Length == 0) continue;
            if (((ulong)flags & (1UL << i)) != 0) sb.Append(Mnemonics[i]).Append(' ');
        }
        return sb.ToString();
    }
}
