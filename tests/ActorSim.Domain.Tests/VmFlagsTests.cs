using ActorSim.Domain.Kernel;

namespace ActorSim.Domain.Tests;

/// <summary>kernel-model.md §1: flag values, the word-size rule, and the smaps VmFlags line.</summary>
public class VmFlagsTests
{
    [Theory]
    [InlineData(VmFlags.VM_READ, 0x1UL, "rd")]
    [InlineData(VmFlags.VM_WRITE, 0x2UL, "wr")]
    [InlineData(VmFlags.VM_EXEC, 0x4UL, "ex")]
    [InlineData(VmFlags.VM_SHARED, 0x8UL, "sh")]
    [InlineData(VmFlags.VM_MAYREAD, 0x10UL, "mr")]
    [InlineData(VmFlags.VM_MAYWRITE, 0x20UL, "mw")]
    [InlineData(VmFlags.VM_MAYEXEC, 0x40UL, "me")]
    [InlineData(VmFlags.VM_MAYSHARE, 0x80UL, "ms")]
    [InlineData(VmFlags.VM_GROWSDOWN, 0x100UL, "gd")]
    [InlineData(VmFlags.VM_UFFD_MISSING, 0x200UL, "um")]
    [InlineData(VmFlags.VM_PFNMAP, 0x400UL, "pf")]
    [InlineData(VmFlags.VM_UFFD_WP, 0x1000UL, "uw")]
    [InlineData(VmFlags.VM_LOCKED, 0x2000UL, "lo")]
    [InlineData(VmFlags.VM_IO, 0x4000UL, "io")]
    [InlineData(VmFlags.VM_SEQ_READ, 0x8000UL, "sr")]
    [InlineData(VmFlags.VM_RAND_READ, 0x10000UL, "rr")]
    [InlineData(VmFlags.VM_DONTCOPY, 0x20000UL, "dc")]
    [InlineData(VmFlags.VM_DONTEXPAND, 0x40000UL, "de")]
    [InlineData(VmFlags.VM_LOCKONFAULT, 0x80000UL, "lf")]
    [InlineData(VmFlags.VM_ACCOUNT, 0x100000UL, "ac")]
    [InlineData(VmFlags.VM_NORESERVE, 0x200000UL, "nr")]
    [InlineData(VmFlags.VM_HUGETLB, 0x400000UL, "ht")]
    [InlineData(VmFlags.VM_SYNC, 0x800000UL, "sf")]
    [InlineData(VmFlags.VM_ARCH_1, 0x1000000UL, "bt")]
    [InlineData(VmFlags.VM_WIPEONFORK, 0x2000000UL, "wf")]
    [InlineData(VmFlags.VM_DONTDUMP, 0x4000000UL, "dd")]
    [InlineData(VmFlags.VM_SOFTDIRTY, 0x8000000UL, "sd")]
    [InlineData(VmFlags.VM_MIXEDMAP, 0x10000000UL, "mm")]
    [InlineData(VmFlags.VM_HUGEPAGE, 0x20000000UL, "hg")]
    [InlineData(VmFlags.VM_NOHUGEPAGE, 0x40000000UL, "nh")]
    [InlineData(VmFlags.VM_MERGEABLE, 0x80000000UL, "mg")]
    [InlineData(VmFlags.VM_MTE, 1UL << 36, "mt")]
    [InlineData(VmFlags.VM_MTE_ALLOWED, 1UL << 37, "")]
    [InlineData(VmFlags.VM_UFFD_MINOR, 1UL << 38, "ui")]
    [InlineData(VmFlags.VM_ALLOW_ANY_UNCACHED, 0x0000_0080_0000_0000UL, "??")]
    [InlineData(VmFlags.VM_DROPPABLE, 1UL << 40, "dp")]
    [InlineData(VmFlags.VM_SEALED, 1UL << 63, "sl")]
    public void Flag_has_the_kernels_value_and_smaps_mnemonic(VmFlags flag, ulong value, string mnemonic)
    {
        Assert.Equal(value, (ulong)flag);
        Assert.Equal(mnemonic, Smaps.MnemonicOf(System.Numerics.BitOperations.Log2(value)));
        Assert.Equal(mnemonic.Length == 0 ? "" : mnemonic + " ", Smaps.VmFlagsLine(flag));
    }

    [Fact]
    public void VM_ALLOW_ANY_UNCACHED_is_bit_39_on_64_bit_and_VM_NONE_on_32_bit()
    {
        Assert.Equal(1UL << 39, (ulong)VmFlagBits.AllowAnyUncached(WordSize.Bits64));
        Assert.Equal(VmFlags.VM_NONE, VmFlagBits.AllowAnyUncached(WordSize.Bits32));
        Assert.Equal(VmFlags.VM_NONE, TestHosts.Policy("6.9", word: WordSize.Bits32).AllowAnyUncachedFlag);
        Assert.Equal(VmFlags.VM_NONE, TestHosts.Policy("6.8").AllowAnyUncachedFlag);
        Assert.Equal(VmFlags.VM_ALLOW_ANY_UNCACHED, TestHosts.Policy("6.17").AllowAnyUncachedFlag);
    }

    [Fact]
    public void VM_SPECIAL_is_IO_DONTEXPAND_PFNMAP_MIXEDMAP() =>
        Assert.Equal(0x10044400UL, (ulong)VmFlags.VM_SPECIAL);

    [Theory]
    [InlineData(0x0UL, "")]
    [InlineData(0x800UL, "?? ")]                    // bit 11 is unused: "??"
    [InlineData(0x1_0000_0000UL, "")]               // pkey bit: empty entry, never printed
    [InlineData(0x8_0000_0000UL, "")]
    [InlineData(0x800_0000_0000UL, "?? ")]          // bit 43: no name
    public void Smaps_prints_unnamed_bits_as_question_marks_and_skips_empty_entries(ulong flags, string line) =>
        Assert.Equal(line, Smaps.VmFlagsLine((VmFlags)flags));

    [Fact]
    public void Smaps_of_a_VFIO_BAR_VMA_on_6_9_ends_with_question_marks_for_bit_39() =>
        Assert.Equal("rd wr sh mr mw me ms pf io de dd ?? ",
            Smaps.VmFlagsLine(TestHosts.VfioBarFlags | VmFlags.VM_ALLOW_ANY_UNCACHED));

    [Fact]
    public void Flags_are_printed_in_bit_order_whatever_order_they_were_set_in() =>
        Assert.Equal("rd ex pf sl ", Smaps.VmFlagsLine(VmFlags.VM_SEALED | VmFlags.VM_PFNMAP | VmFlags.VM_EXEC | VmFlags.VM_READ));

    [Fact]
    public void Flag_names_parse_and_print_back()
    {
        Assert.True(VmFlagBits.TryParse("VM_ALLOW_ANY_UNCACHED", out var f));
        Assert.Equal(VmFlags.VM_ALLOW_ANY_UNCACHED, f);
        Assert.False(VmFlagBits.TryParse("VM_NOT_A_FLAG", out _));
        Assert.False(VmFlagBits.TryParse("READ", out _));
        Assert.Equal(["VM_READ", "VM_PFNMAP", "VM_ALLOW_ANY_UNCACHED"],
            VmFlagBits.Names(VmFlags.VM_READ | VmFlags.VM_PFNMAP | VmFlags.VM_ALLOW_ANY_UNCACHED));
    }

    [Fact]
    public void Truncating_to_32_bits_drops_the_high_flags() =>
        Assert.Equal(VmFlags.VM_READ, VmFlagBits.Truncate(VmFlags.VM_READ | VmFlags.VM_ALLOW_ANY_UNCACHED, WordSize.Bits32));
}
