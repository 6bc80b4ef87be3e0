using ActorSim.Domain.Kernel;

namespace ActorSim.Domain.Vfio;

/// <summary>A region as a scenario or workload describes it, before it has a physical address.</summary>
public readonly record struct RegionSpec(int Index, ulong Size, BarType Type, bool Prefetchable);

/// <summary>Deterministic physical placement of device regions: the n-th device of each kind gets a
/// window of its own; inside it, memory regions are placed largest first, each naturally aligned
/// (as PCI BARs are).</summary>
public static class DeviceLayout
{
    private const ulong PciWindow = 64UL << 30;        // 64 GiB per PCI device
    private const ulong PlatformWindow = 4UL << 30;    // 4 GiB per platform device
    private const ulong NvgraceWindow = 1UL << 40;     // 1 TiB per nvgrace device

    public static VfioDevice Build(string name, VfioDriver driver, int ordinal, IEnumerable<RegionSpec> specs)
    {
        var windowBase = driver switch
        {
            VfioDriver.VfioPlatform => PhysMap.PlatformMmioBase + (ulong)ordinal * PlatformWindow,
            VfioDriver.NvgraceGpu => PhysMap.NvgraceMemBase + (ulong)ordinal * NvgraceWindow,
            _ => PhysMap.PciMmioBase + (ulong)ordinal * PciWindow,
        };
        var regions = new List<VfioRegion>();
        var next = windowBase;
        foreach (var s in specs.OrderByDescending(s => s.Size).ThenBy(s => s.Index))
        {
            if (s.Type == BarType.Io || s.Size == 0)
            {
                regions.Add(new VfioRegion(s.Index, s.Size, s.Type, s.Prefetchable, 0));
                continue;
            }
            var align = Math.Max(System.Numerics.BitOperations.RoundUpToPowerOf2(s.Size), PageGeometry.PageSize);
            next = PageGeometry.AlignUp(next, align);
            regions.Add(new VfioRegion(s.Index, s.Size, s.Type, s.Prefetchable, next));
            next += align;
        }
        return VfioDevice.Create(name, driver, regions);
    }
}
