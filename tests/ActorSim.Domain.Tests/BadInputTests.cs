using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using static ActorSim.Domain.Tests.TestHosts;

namespace ActorSim.Domain.Tests;

/// <summary>Bad input to the domain returns the kernel's errno, never an exception.</summary>
public class BadInputTests
{
    public static TheoryData<string, int, MemslotFlags, ulong, ulong, ulong, Errno> MemslotRows() => new()
    {
        { "size not page aligned", 1, MemslotFlags.None, BarGpa, 0x1800, 0x7000_0000_0000, Errno.EINVAL },
        { "gpa not page aligned", 1, MemslotFlags.None, BarGpa + 0x10, 0x1000, 0x7000_0000_0000, Errno.EINVAL },
        { "hva not page aligned", 1, MemslotFlags.None, BarGpa, 0x1000, 0x7000_0000_0010, Errno.EINVAL },
        { "hva past TASK_SIZE", 1, MemslotFlags.None, BarGpa, 0x2000, (1UL << 48) - 0x1000, Errno.EINVAL },
        { "unknown flag", 1, (MemslotFlags)0x8, BarGpa, 0x1000, 0x7000_0000_0000, Errno.EINVAL },
        { "guest_memfd flag", 1, MemslotFlags.KVM_MEM_GUEST_MEMFD, BarGpa, 0x1000, 0x7000_0000_0000, Errno.EINVAL },
        { "slot id too large", 40000, MemslotFlags.None, BarGpa, 0x1000, 0x7000_0000_0000, Errno.EINVAL },
        { "negative slot id", -1, MemslotFlags.None, BarGpa, 0x1000, 0x7000_0000_0000, Errno.EINVAL },
        { "gpa + size wraps", 1, MemslotFlags.None, ulong.MaxValue - 0xFFF, 0x2000, 0x7000_0000_0000, Errno.EINVAL },
        { "delete of a slot that does not exist", 5, MemslotFlags.None, 0, 0, 0, Errno.EINVAL },
        { "overlaps slot 0", 1, MemslotFlags.None, RamGpa + 0x1000, 0x1000, 0x7000_0000_0000, Errno.EEXIST },
        { "past the IPA space", 1, MemslotFlags.None, (1UL << 40) - 0x1000, 0x2000, 0x7000_0000_0000, Errno.EFAULT },
        { "ok", 1, MemslotFlags.None, BarGpa, 0x1000, 0x7000_0000_0000, Errno.None },
    };

    [Theory]
    [MemberData(nameof(MemslotRows))]
    public void KVM_SET_USER_MEMORY_REGION_rejects_bad_input_with_the_kernels_errno(string row, int id, MemslotFlags flags, ulong gpa, ulong size, ulong hva, Errno expected)
    {
        _ = row;
        var k = WithGpuAndVm(Policy("6.9"), out _);
        Assert.Equal(expected, k.SetMemslot("vm1", id, flags, gpa, size, hva));
    }

    [Fact]
    public void Changing_an_existing_slots_size_hva_or_readonly_flag_is_EINVAL_and_moving_it_works()
    {
        var k = WithGpuAndVm(Policy("6.9"), out var ram);
        Assert.Equal(Errno.EINVAL, k.SetMemslot("vm1", 0, MemslotFlags.None, RamGpa, GiB / 2, ram));
        Assert.Equal(Errno.EINVAL, k.SetMemslot("vm1", 0, MemslotFlags.None, RamGpa, GiB, ram + 0x1000));
        Assert.Equal(Errno.EINVAL, k.SetMemslot("vm1", 0, MemslotFlags.KVM_MEM_READONLY, RamGpa, GiB, ram));
        k.Access("vm1", 0, RamGpa, AccessOp.Read);
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 0, MemslotFlags.None, 2 * GiB, GiB, ram));
        Assert.Null(k.Vm("vm1").Stage2.Lookup(RamGpa)); // a move flushes the old range
    }

    [Theory]
    [InlineData(0x800UL, 0x1000UL, Errno.EINVAL)]
    [InlineData(0UL, 0UL, Errno.EINVAL)]
    [InlineData(0UL, 1UL << 49, Errno.ENOMEM)]
    public void Mmap_rejects_bad_arguments(ulong offset, ulong length, Errno expected)
    {
        var k = WithGpuAndVm(Policy("6.9"), out _);
        Assert.Equal(expected, k.MmapDevice("gpu0", 0, offset, length, true, Prot.Read, null, out _));
    }

    [Fact]
    public void Munmap_and_mprotect_reject_unaligned_and_unmapped_ranges()
    {
        var k = WithGpuAndVm(Policy("6.9"), out var ram);
        Assert.Equal(Errno.EINVAL, k.Munmap(ram + 1, 0x1000));
        Assert.Equal(Errno.EINVAL, k.Munmap(ram, 0));
        Assert.Equal(Errno.None, k.Munmap(0x1000_0000, 0x1000)); // nothing there: fine
        Assert.Equal(Errno.EINVAL, k.Mprotect(ram + 1, 0x1000, Prot.Read));
        Assert.Equal(Errno.ENOMEM, k.Mprotect(0x1000_0000, 0x1000, Prot.Read));
    }

    [Fact]
    public void Device_state_changes_that_a_driver_does_not_have_are_EINVAL()
    {
        var k = new Simulation.SyncKernel(Policy("6.9"));
        k.AddDevice(Platform());
        Assert.Equal(Errno.EINVAL, k.SetDeviceMemory("plat0", false));
        Assert.Equal(Errno.EINVAL, k.SetPowerState("plat0", Vfio.PciPowerState.D3Hot));
        Assert.Equal(Errno.None, k.ResetDevice("plat0"));
    }

    [Fact]
    public void Munmap_of_part_of_a_VMA_splits_it_and_keeps_pgoff_in_step()
    {
        var k = WithGpuAndVm(Policy("6.17"), out _);
        Assert.Equal(Errno.None, k.MmapDevice("gpu0", 0, 0, 16 * MiB, true, Prot.Read | Prot.Write, null, out var hva));
        var pgoff = k.Mm.VmaLookup(hva)!.PgOff;
        Assert.Equal(Errno.None, k.Munmap(hva + 0x1000, 0x1000));
        Assert.Null(k.Mm.VmaLookup(hva + 0x1000));
        var right = k.Mm.VmaLookup(hva + 0x2000)!;
        Assert.Equal(pgoff + 2, right.PgOff);
        Assert.Equal(hva + 0x2000, right.Start);
    }
}

public class RamExhaustionTests
{
    [Fact]
    public void Anonymous_memory_beyond_the_simulated_RAM_is_ENOMEM_not_device_memory()
    {
        var k = new Simulation.SyncKernel(Policy("6.9"));
        Assert.Equal(Errno.None, k.MmapRam(61 * GiB, null, out _));
        Assert.Equal(Errno.ENOMEM, k.MmapRam(2 * GiB, null, out _));
        Assert.All(k.Mm.Vmas, v => Assert.True(PhysMap.PfnIsMapMemory(v.PfnOf(v.End - 0x1000))));
    }
}
