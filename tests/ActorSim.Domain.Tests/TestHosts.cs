using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Vfio;

namespace ActorSim.Domain.Tests;

/// <summary>Ready-made hosts and fault inputs for the tests.</summary>
public static class TestHosts
{
    public const ulong MiB = 1UL << 20;
    public const ulong GiB = 1UL << 30;
    public const ulong RamGpa = 0x4000_0000UL;
    public const ulong BarGpa = 0x80_0000_0000UL;

    public static KernelPolicy Policy(string kernel, bool fwb = true, bool dic = true, WordSize word = WordSize.Bits64) =>
        KernelPolicy.Of(kernel, fwb, dic) with { WordSize = word };

    public static VfioDevice Gpu(string name = "gpu0", int ordinal = 0) => DeviceLayout.Build(name, VfioDriver.VfioPci, ordinal,
    [
        new RegionSpec(0, 16 * MiB, BarType.Mem64, true),
        new RegionSpec(2, 256, BarType.Io, false),
        new RegionSpec(4, 0x1000, BarType.Mem32, false),
    ]);

    public static VfioDevice Nvgrace(string name = "gh0") => DeviceLayout.Build(name, VfioDriver.NvgraceGpu, 0,
    [
        new RegionSpec(VfioRegionIndex.NvgraceUsemem, 64 * MiB, BarType.Mem64, true),
        new RegionSpec(VfioRegionIndex.NvgraceResmem, 2 * MiB, BarType.Mem64, true),
    ]);

    public static VfioDevice Platform(string name = "plat0") => DeviceLayout.Build(name, VfioDriver.VfioPlatform, 0,
    [
        new RegionSpec(0, 64 * 1024, BarType.Mem32, false),
    ]);

    /// <summary>A host with gpu0 and vm1 (1 GiB of RAM in slot 0 at 1 GiB).</summary>
    public static SyncKernel WithGpuAndVm(KernelPolicy policy, out ulong ramHva)
    {
        var k = new SyncKernel(policy);
        k.AddDevice(Gpu());
        k.AddVm(KvmVm.Create("vm1"));
        Assert.Equal(Errno.None, k.MmapRam(GiB, null, out ramHva));
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 0, MemslotFlags.None, RamGpa, GiB, ramHva));
        return k;
    }

    /// <summary>gpu0's BAR0 mmapped and put in slot 1 at <see cref="BarGpa"/>.</summary>
    public static SyncKernel WithMappedBar(KernelPolicy policy, out ulong barHva, MemslotFlags flags = MemslotFlags.None)
    {
        var k = WithGpuAndVm(policy, out _);
        Assert.Equal(Errno.None, k.MmapDevice("gpu0", 0, 0, 16 * MiB, true, Prot.Read | Prot.Write, null, out barHva));
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 1, flags, BarGpa, 16 * MiB, barHva));
        return k;
    }

    /// <summary>Fault inputs for a single decision with nothing racing: one 4 KiB page at gpa
    /// 0x8000001000 in a 16 MiB slot whose hva is 0x7f0000000000.</summary>
    public static FaultInputs Inputs(KernelPolicy policy, VmFlags vmaFlags, MairIndex s1, bool pfnIsMapMemory,
        AccessOp op = AccessOp.Read, bool writablePte = true, MemslotFlags slotFlags = MemslotFlags.None)
    {
        const ulong hvaBase = 0x7f00_0000_0000UL;
        var slot = new Memslot(1, BarGpa, 16 * MiB, hvaBase, slotFlags);
        var gpa = BarGpa + 0x1000;
        var vma = new VmaSnapshot(hvaBase, hvaBase + 16 * MiB, vmaFlags, 0, s1);
        var pfn = pfnIsMapMemory ? 0x90000UL : 0x8000001UL;
        // Page-sized decision: pgoff that never aligns with the hva at PMD granularity.
        vma = vma with { PgOff = 1 };
        var pfnHva = UserMemAbort.PfnHva(vma, gpa, slot);
        return new FaultInputs("vm1", 0, gpa, op, false, 3, slot, slot.GpaToHva(gpa), vma, pfnHva,
            new PfnLookup(PfnStatus.Ok, pfn, pfnIsMapMemory, writablePte), policy, false, 40, 5, 5, 0, null);
    }

    public const VmFlags VfioBarFlags = VmFlags.VM_READ | VmFlags.VM_WRITE | VmFlags.VM_SHARED | VmFlags.VM_MAYREAD |
        VmFlags.VM_MAYWRITE | VmFlags.VM_MAYEXEC | VmFlags.VM_MAYSHARE | VmFlags.VM_IO | VmFlags.VM_PFNMAP |
        VmFlags.VM_DONTEXPAND | VmFlags.VM_DONTDUMP;
}
