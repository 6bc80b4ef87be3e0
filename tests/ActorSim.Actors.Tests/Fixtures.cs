using ActorSim.Domain.Kernel;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Vfio;

namespace ActorSim.Actors.Tests;

public static class Fixtures
{
    public const ulong MiB = 1UL << 20;
    public const ulong BarGpa = 0x80_0000_0000UL;
    public const ulong BarHva = 0x7eff_0000_0000UL;

    public static KernelPolicy Policy(string k, bool fwb = true, bool dic = true) => KernelPolicy.Of(k, fwb, dic);

    public static VfioDevice Gpu(string name = "gpu0") =>
        DeviceLayout.Build(name, VfioDriver.VfioPci, 0, [new RegionSpec(0, 16 * MiB, BarType.Mem64, true)]);

    public const VmFlags BarFlags = VmFlags.VM_READ | VmFlags.VM_WRITE | VmFlags.VM_SHARED | VmFlags.VM_MAYREAD | VmFlags.VM_MAYWRITE |
        VmFlags.VM_MAYEXEC | VmFlags.VM_MAYSHARE | VmFlags.VM_IO | VmFlags.VM_PFNMAP | VmFlags.VM_DONTEXPAND | VmFlags.VM_DONTDUMP |
        VmFlags.VM_ALLOW_ANY_UNCACHED;

    /// <summary>A BAR VMA at <see cref="BarHva"/> whose pgoff never aligns, so faults map pages.</summary>
    public static Vma BarVma() => new(BarHva, BarHva + 16 * MiB, BarFlags, 1, MairIndex.MT_DEVICE_nGnRnE,
        new VmaBacking(BackingKind.VfioPci, "gpu0", 0, 0, PhysMap.PciMmioBase >> 12), PageRangeSet.Empty.Add(BarHva, BarHva + 16 * MiB));
}
