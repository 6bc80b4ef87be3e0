using System.Collections.Immutable;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Mm;

namespace ActorSim.Domain.Vfio;

/// <summary>A mmap request as the driver sees it: the region, the offset into it, the length, and the
/// vm_flags the generic mmap path computed.</summary>
public readonly record struct VfioMmapRequest(int RegionIndex, ulong Offset, ulong Length, VmFlags VmFlags);

/// <summary>A VFIO device as a decider: the drivers' mmap (vfio_pci_core_mmap, nvgrace_gpu_mmap,
/// vfio_platform_mmap), the mmap fault handler, and the state changes that zap every BAR mapping.</summary>
public static class VfioDeviceDecider
{
    /// <summary>The driver's mmap: on success, the VMA it leaves (flags added, page protection, pgoff,
    /// backing, whether PTEs were installed now); else its errno. <paramref name="events"/> holds the
    /// device's own state changes (first mmap of a BAR requests its regions).</summary>
    public static Errno Mmap(VfioDevice d, KernelPolicy policy, VfioMmapRequest req, out VmaTemplate? vma, out IReadOnlyList<IDomainEvent> events)
    {
        events = [];
        vma = null;
        return d.Driver switch
        {
            VfioDriver.VfioPci => VfioPciCoreMmap(d, policy, req, out vma, out events),
            VfioDriver.NvgraceGpu => NvgraceGpuMmap(d, policy, req, out vma, out events),
            VfioDriver.VfioPlatform => VfioPlatformMmap(d, req, out vma),
            _ => Errno.EINVAL,
        };
    }

    /// <summary>Whether the driver that mmapped a VMA with this backing and page protection sets
    /// VM_ALLOW_ANY_UNCACHED on it under a kernel that has the flag (v6.9+, a39d3a966a09): vfio_pci_core_mmap
    /// for every BAR (<see cref="BackingKind.VfioPci"/>), and nvgrace_gpu_mmap for RESMEM, the one region it
    /// remap_pfn_range's write-combining (MT_NORMAL_NC); not USEMEM (cacheable) nor vfio-platform (device
    /// nGnRnE), nor anonymous memory. What the mmap functions above do, for a VMA already made: replay
    /// under another kernel gives its VMAs the flag that kernel's driver would have set.</summary>
    public static bool SetsAllowAnyUncached(BackingKind kind, MairIndex s1) =>
        kind == BackingKind.VfioPci || (kind == BackingKind.PfnRange && s1 == MairIndex.MT_NORMAL_NC);

    /// <summary>vfio_pci_core_mmap (drivers/vfio/pci/vfio_pci_core.c, v6.12; kernel-model.md §2.1–2.2),
    /// checks in the kernel's order.</summary>
    public static Errno VfioPciCoreMmap(VfioDevice d, KernelPolicy policy, VfioMmapRequest req, out VmaTemplate? vma, out IReadOnlyList<IDomainEvent> events)
    {
        vma = null;
        events = [];
        var index = req.RegionIndex;
        const int numDeviceRegions = 0; // plain vfio-pci registers no device-specific regions
        if (index < 0 || index >= VfioRegionIndex.VfioPciNumRegions + numDeviceRegions) return Errno.EINVAL; // 1
        // 2: vm_end < vm_start cannot happen for a VMA built by mmap.
        if (!req.VmFlags.Has(VmFlags.VM_SHARED)) return Errno.EINVAL;                                        // 3
        if (index >= VfioRegionIndex.VfioPciNumRegions) return Errno.EINVAL;                                 // 4: no region ops->mmap
        if (index >= VfioRegionIndex.Rom) return Errno.EINVAL;                                               // 5: ROM, config, VGA
        var bar = d.Region(index);
        if (bar is null || !BarMmapSupported(bar)) return Errno.EINVAL;                                      // 6
        var len = PageGeometry.PageAlign(req.Length);
        if (req.Offset + len > PageGeometry.PageAlign(bar.Size) || req.Offset + len < req.Offset) return Errno.EINVAL; // 7
        if (!d.RequestedBars.Contains(index))
        {
            if (bar.ClaimedElsewhere) return Errno.EBUSY;                                                    // 8
            if (bar.IomapFails) return Errno.ENOMEM;                                                         // 9 (region released)
            events = [new VfioBarRequested(d.Name, index)];
        }
        // §2.2: pgprot_noncached -> MT_DEVICE_nGnRnE; VM_ALLOW_ANY_UNCACHED (v6.9+, a39d3a966a09) |
        // VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP; no PTEs until the first fault.
        var flags = req.VmFlags | policy.AllowAnyUncachedFlag | VmFlags.VM_IO | VmFlags.VM_PFNMAP |
                    VmFlags.VM_DONTEXPAND | VmFlags.VM_DONTDUMP;
        var pfnAtStart = bar.PfnStart + (req.Offset >> PageGeometry.PageShift);
        var pgoff = policy.VfioRewritesPgoff ? pfnAtStart : VfioRegionIndex.PgOffOf(index, req.Offset);
        vma = new VmaTemplate(len, flags, pgoff, MairIndex.MT_DEVICE_nGnRnE,
            new VmaBacking(BackingKind.VfioPci, d.Name, index, req.Offset, pfnAtStart), Prepopulated: false);
        return Errno.None;
    }

    /// <summary>vfio_pci_probe_mmaps: memory BAR, size not 0; a BAR smaller than a page only if it
    /// starts page aligned (the dummy resource for the rest of the page is assumed reservable [U]).</summary>
    public static bool BarMmapSupported(VfioRegion bar)
    {
        if (bar.Type == BarType.Io || bar.Size == 0) return false;
        if (bar.Size >= PageGeometry.PageSize) return true;
        return PageGeometry.IsPageAligned(bar.PhysStart);
    }

    /// <summary>nvgrace_gpu_mmap (drivers/vfio/pci/nvgrace-gpu/main.c, v6.12): USEMEM and RESMEM are
    /// remap_pfn_range'd at mmap time; RESMEM gets pgprot_writecombine and VM_ALLOW_ANY_UNCACHED; other
    /// indexes go to vfio_pci_core_mmap. No VM_SHARED check on the memory regions.</summary>
    public static Errno NvgraceGpuMmap(VfioDevice d, KernelPolicy policy, VfioMmapRequest req, out VmaTemplate? vma, out IReadOnlyList<IDomainEvent> events)
    {
        events = [];
        vma = null;
        if (req.RegionIndex is not (VfioRegionIndex.NvgraceUsemem or VfioRegionIndex.NvgraceResmem) || d.Region(req.RegionIndex) is not { } mem)
            return VfioPciCoreMmap(d, policy, req, out vma, out events);
        var len = PageGeometry.PageAlign(req.Length);
        // check_add_overflow(PFN_PHYS(pgoff), req_len, &end)
        var end = req.Offset + len;
        if (end < req.Offset) return Errno.EOVERFLOW;
        if (end > mem.Size) return Errno.EINVAL;
        var resmem = req.RegionIndex == VfioRegionIndex.NvgraceResmem;
        var flags = req.VmFlags | VmFlags.VM_IO | VmFlags.VM_PFNMAP | VmFlags.VM_DONTEXPAND | VmFlags.VM_DONTDUMP;
        if (resmem) flags |= policy.AllowAnyUncachedFlag;
        var startPfn = mem.PfnStart + (req.Offset >> PageGeometry.PageShift);
        vma = new VmaTemplate(len, flags, startPfn, resmem ? MairIndex.MT_NORMAL_NC : MairIndex.MT_NORMAL,
            new VmaBacking(BackingKind.PfnRange, d.Name, req.RegionIndex, req.Offset, startPfn), Prepopulated: true);
        return Errno.None;
    }

    /// <summary>vfio_platform_mmap + vfio_platform_mmap_mmio (drivers/vfio/platform/vfio_platform_common.c)
    /// [U: from memory]: VM_SHARED required, index in range, region mmap-able and readable/writable as
    /// the prot asks, request inside the region; pgprot_noncached and remap_pfn_range. No
    /// VM_ALLOW_ANY_UNCACHED: platform devices are not known to be safe.</summary>
    public static Errno VfioPlatformMmap(VfioDevice d, VfioMmapRequest req, out VmaTemplate? vma)
    {
        vma = null;
        if (!req.VmFlags.Has(VmFlags.VM_SHARED)) return Errno.EINVAL;
        if (req.RegionIndex < 0 || d.Region(req.RegionIndex) is not { } r) return Errno.EINVAL;
        if (r.Type == BarType.Io) return Errno.EINVAL;  // no VFIO_REGION_INFO_FLAG_MMAP
        if (!r.Readable && req.VmFlags.Has(VmFlags.VM_READ)) return Errno.EINVAL;
        if (!r.Writable && req.VmFlags.Has(VmFlags.VM_WRITE)) return Errno.EINVAL;
        var len = PageGeometry.PageAlign(req.Length);
        if (r.Size < PageGeometry.PageSize || req.Offset + len > r.Size || req.Offset + len < req.Offset) return Errno.EINVAL;
        var pfn = r.PfnStart + (req.Offset >> PageGeometry.PageShift);
        var flags = req.VmFlags | VmFlags.VM_IO | VmFlags.VM_PFNMAP | VmFlags.VM_DONTEXPAND | VmFlags.VM_DONTDUMP;
        vma = new VmaTemplate(len, flags, pfn, MairIndex.MT_DEVICE_nGnRnE,
            new VmaBacking(BackingKind.PfnRange, d.Name, req.RegionIndex, req.Offset, pfn), Prepopulated: true);
        return Errno.None;
    }

    /// <summary>The vfio-pci mmap fault handler for a VMA of this device without a PTE at hva:
    /// SIGBUS while memory does not decode (memory disabled, D3hot+); else ≤ v6.9 maps the whole VMA
    /// (io_remap_pfn_range), later kernels the faulting page (vfio_pci_mmap_huge_fault, order 0).</summary>
    public static DriverFaultAnswer MmapFault(VfioDevice d, KernelPolicy policy, ulong vmaStart, ulong vmaEnd, ulong hva)
    {
        if (!d.MemoryDecodes) return DriverFaultAnswer.SigBus;
        if (policy.VfioFaultMapsWholeVma) return new(false, vmaStart, vmaEnd);
        var page = PageGeometry.AlignDown(hva, PageGeometry.PageSize);
        return new(false, page, page + PageGeometry.PageSize);
    }

    /// <summary>A config write to PCI_COMMAND.MEMORY. Clearing it zaps every BAR mapping
    /// (vfio_basic_config_write → vfio_pci_zap_and_down_write_memory_lock). Platform devices have no
    /// PCI command register: EINVAL.</summary>
    public static Decision SetMemoryEnabled(VfioDevice d, bool enabled)
    {
        if (d.Driver == VfioDriver.VfioPlatform) return Decision.Fail(Errno.EINVAL);
        if (d.MemoryEnabled == enabled) return Decision.Ok();
        return enabled
            ? Decision.Ok(new VfioMemoryToggled(d.Name, true))
            : Decision.Ok(new VfioBarsZapRequested(d.Name, [.. d.BarRegions.Order()]), new VfioMemoryToggled(d.Name, false));
    }

    /// <summary>VFIO_DEVICE_RESET: EINVAL unless reset works; vfio-pci zaps all BAR mappings and goes
    /// to D0 before the reset. vfio-platform resets without zapping.</summary>
    public static Decision Reset(VfioDevice d)
    {
        if (!d.ResetWorks) return Decision.Fail(Errno.EINVAL);
        if (d.Driver == VfioDriver.VfioPlatform) return Decision.Ok(new VfioDeviceReset(d.Name));
        var events = new List<IDomainEvent> { new VfioBarsZapRequested(d.Name, [.. d.BarRegions.Order()]) };
        if (d.Power != PciPowerState.D0) events.Add(new VfioPowerStateChanged(d.Name, PciPowerState.D0));
        events.Add(new VfioDeviceReset(d.Name));
        return Decision.Ok(events);
    }

    /// <summary>vfio_pci_set_power_state via vfio_lock_and_set_power_state: entering D3hot or deeper zaps.</summary>
    public static Decision SetPowerState(VfioDevice d, PciPowerState state)
    {
        if (d.Driver == VfioDriver.VfioPlatform) return Decision.Fail(Errno.EINVAL);
        if (d.Power == state) return Decision.Ok();
        return state >= PciPowerState.D3Hot
            ? Decision.Ok(new VfioBarsZapRequested(d.Name, [.. d.BarRegions.Order()]), new VfioPowerStateChanged(d.Name, state))
            : Decision.Ok(new VfioPowerStateChanged(d.Name, state));
    }

    public static VfioDevice Evolve(VfioDevice d, IDomainEvent e) => e switch
    {
        VfioBarRequested r when r.Device == d.Name => d with { RequestedBars = d.RequestedBars.Add(r.Bar) },
        VfioMemoryToggled m when m.Device == d.Name => d with { MemoryEnabled = m.Enabled },
        VfioPowerStateChanged p when p.Device == d.Name => d with { Power = p.Power },
        _ => d,
    };
}
