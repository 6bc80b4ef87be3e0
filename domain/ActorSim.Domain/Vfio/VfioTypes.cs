using System.Collections.Immutable;
using ActorSim.Domain.Kernel;

namespace ActorSim.Domain.Vfio;

public enum VfioDriver { VfioPci, VfioPlatform, NvgraceGpu }

public enum BarType { Mem32, Mem64, Io }

/// <summary>PCI power state; memory decodes only below D3hot.</summary>
public enum PciPowerState { D0 = 0, D1 = 1, D2 = 2, D3Hot = 3, D3Cold = 4 }

/// <summary>VFIO region indexes (include/uapi/linux/vfio.h) and the offset encoding
/// (VFIO_PCI_OFFSET_SHIFT = 40; vfio-platform uses the same shift).</summary>
public static class VfioRegionIndex
{
    public const int Bar0 = 0, Bar5 = 5, Rom = 6, Config = 7, Vga = 8;
    public const int VfioPciNumRegions = 9;
    public const int OffsetShift = 40;
    /// <summary>nvgrace-gpu exposes its device memory as fake BARs: USEMEM at BAR2, RESMEM at BAR4.</summary>
    public const int NvgraceUsemem = 2, NvgraceResmem = 4;

    public static ulong ToOffset(int index) => (ulong)index << OffsetShift;
    public static ulong PgOffOf(int index, ulong offsetInRegion) =>
        ((ulong)index << (OffsetShift - PageGeometry.PageShift)) + (offsetInRegion >> PageGeometry.PageShift);
}

/// <summary>One region of a device: a PCI BAR, a platform MMIO region, or an nvgrace memory region.
/// <paramref name="ClaimedElsewhere"/> makes pci_request_selected_regions fail (another driver holds
/// it); <paramref name="IomapFails"/> makes pci_iomap return NULL.</summary>
public sealed record VfioRegion(
    int Index, ulong Size, BarType Type, bool Prefetchable, ulong PhysStart,
    bool ClaimedElsewhere = false, bool IomapFails = false, bool Readable = true, bool Writable = true)
{
    public ulong PfnStart => PhysStart >> PageGeometry.PageShift;
}

/// <summary>A VFIO device: driver, regions, and the state that gates its memory.</summary>
public sealed record VfioDevice(
    string Name,
    VfioDriver Driver,
    ImmutableArray<VfioRegion> Regions,
    bool MemoryEnabled,
    PciPowerState Power,
    ImmutableSortedSet<int> RequestedBars,
    bool ResetWorks = true,
    bool IsVf = false)
{
    public static VfioDevice Create(string name, VfioDriver driver, IEnumerable<VfioRegion> regions) =>
        new(name, driver, regions.OrderBy(r => r.Index).ToImmutableArray(), MemoryEnabled: true, PciPowerState.D0,
            ImmutableSortedSet<int>.Empty);

    public VfioRegion? Region(int index) => Regions.FirstOrDefault(r => r.Index == index);

    /// <summary>__vfio_pci_memory_enabled: power state below D3hot and (PCI_COMMAND.MEMORY set in the
    /// virtual config, or the device is an SR-IOV VF).</summary>
    public bool MemoryDecodes => Power < PciPowerState.D3Hot && (MemoryEnabled || IsVf);

    /// <summary>The regions a zap covers: BAR0..BAR5 (vfio_pci_zap_bars).</summary>
    public IReadOnlySet<int> BarRegions => Regions.Where(r => r.Index <= VfioRegionIndex.Bar5).Select(r => r.Index).ToHashSet();
}

/// <summary>Events of a VFIO device.</summary>
public sealed record VfioBarRequested(string Device, int Bar) : IDomainEvent;
public sealed record VfioMemoryToggled(string Device, bool Enabled) : IDomainEvent;
public sealed record VfioPowerStateChanged(string Device, PciPowerState Power) : IDomainEvent;
public sealed record VfioDeviceReset(string Device) : IDomainEvent;
/// <summary>vfio_pci_zap_and_down_write_memory_lock: every BAR mapping of the device must be zapped
/// by the mm (unmap_mapping_range), which notifies KVM.</summary>
public sealed record VfioBarsZapRequested(string Device, ImmutableArray<int> Regions) : IDomainEvent;
