using System.Collections.Immutable;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Vfio;
using static ActorSim.Domain.Tests.TestHosts;

namespace ActorSim.Domain.Tests;

/// <summary>kernel-model.md §2.1 (vfio_pci_core_mmap checks, in order) and §2.2 (what a mmap sets).</summary>
public class VfioPciCoreMmapTests
{
    private static SyncKernel Host(string kernel = "6.9", VfioDevice? device = null)
    {
        var k = new SyncKernel(Policy(kernel));
        k.AddDevice(device ?? Gpu());
        return k;
    }

    private static Errno Mmap(SyncKernel k, int region, ulong offset, ulong size, bool shared = true) =>
        k.MmapDevice("gpu0", region, offset, size, shared, Prot.Read | Prot.Write, null, out _);

    public static TheoryData<string, int, ulong, ulong, bool, Errno> Rows() => new()
    {
        { "0: offset not page aligned", 0, 0x800, 0x1000, true, Errno.EINVAL },
        { "0: length 0", 0, 0, 0, true, Errno.EINVAL },
        { "1: index past the regions (9)", 9, 0, 0x1000, true, Errno.EINVAL },
        { "1: index past the regions (40)", 40, 0, 0x1000, true, Errno.EINVAL },
        { "3: MAP_PRIVATE", 0, 0, 0x1000, false, Errno.EINVAL },
        { "5: ROM (6)", 6, 0, 0x1000, true, Errno.EINVAL },
        { "5: config (7)", 7, 0, 0x1000, true, Errno.EINVAL },
        { "5: VGA (8)", 8, 0, 0x1000, true, Errno.EINVAL },
        { "6: I/O-port BAR", 2, 0, 0x1000, true, Errno.EINVAL },
        { "6: absent BAR (size 0)", 1, 0, 0x1000, true, Errno.EINVAL },
        { "7: size past the BAR", 0, 0, 32 * MiB, true, Errno.EINVAL },
        { "7: offset + size past the BAR", 0, 16 * MiB - 0x1000, 0x2000, true, Errno.EINVAL },
        { "ok: whole BAR", 0, 0, 16 * MiB, true, Errno.None },
        { "ok: last page of the BAR", 0, 16 * MiB - 0x1000, 0x1000, true, Errno.None },
        { "ok: 4 KiB mem32 BAR", 4, 0, 0x1000, true, Errno.None },
        { "ok: unaligned length rounds up inside the BAR", 0, 0, 100, true, Errno.None },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void Vfio_pci_core_mmap_check(string row, int region, ulong offset, ulong size, bool shared, Errno expected)
    {
        _ = row;
        Assert.Equal(expected, Mmap(Host(), region, offset, size, shared));
    }

    private static VfioDevice WithBar0(Func<VfioRegion, VfioRegion> change)
    {
        var d = Gpu();
        return d with { Regions = d.Regions.Select(r => r.Index == 0 ? change(r) : r).ToImmutableArray() };
    }

    [Fact]
    public void Check_8_first_mmap_of_a_BAR_held_by_another_driver_fails_EBUSY() =>
        Assert.Equal(Errno.EBUSY, Mmap(Host(device: WithBar0(r => r with { ClaimedElsewhere = true })), 0, 0, 0x1000));

    [Fact]
    public void Check_9_pci_iomap_failure_gives_ENOMEM() =>
        Assert.Equal(Errno.ENOMEM, Mmap(Host(device: WithBar0(r => r with { IomapFails = true })), 0, 0, 0x1000));

    [Fact]
    public void Checks_run_in_the_kernels_order()
    {
        var busy = WithBar0(r => r with { ClaimedElsewhere = true, IomapFails = true });
        Assert.Equal(Errno.EINVAL, Mmap(Host(device: busy), 0, 0, 0x1000, shared: false)); // 3 before 8
        Assert.Equal(Errno.EINVAL, Mmap(Host(device: busy), 0, 0, 32 * MiB));              // 7 before 8
        Assert.Equal(Errno.EBUSY, Mmap(Host(device: busy), 0, 0, 0x1000));                  // 8 before 9
    }

    [Fact]
    public void Regions_are_requested_once_per_BAR()
    {
        var k = Host();
        Assert.Equal(Errno.None, Mmap(k, 0, 0, 0x1000));
        Assert.Equal(Errno.None, Mmap(k, 0, 0x1000, 0x1000));
        Assert.Single(k.Log.Select(e => e.Event).OfType<VfioBarRequested>());
        Assert.Contains(0, k.Device("gpu0").RequestedBars);
    }

    [Theory]
    [InlineData(0x1000UL, true)]   // small BAR at a page-aligned address: supported
    [InlineData(0x800UL, false)]   // small BAR not page aligned: not supported
    public void Check_6_a_BAR_smaller_than_a_page_is_mmapable_only_when_page_aligned(ulong start, bool supported)
    {
        var d = Gpu() with { Regions = [new VfioRegion(0, 0x100, BarType.Mem32, false, PhysMap.PciMmioBase + start)] };
        Assert.Equal(supported ? Errno.None : Errno.EINVAL, Mmap(Host(device: d), 0, 0, 0x100));
    }

    [Theory]
    [InlineData("6.8", false)]
    [InlineData("6.9", true)]
    [InlineData("6.17", true)]
    public void A_BAR_mmap_sets_IO_PFNMAP_DONTEXPAND_DONTDUMP_and_from_6_9_ALLOW_ANY_UNCACHED(string kernel, bool flag)
    {
        var k = Host(kernel);
        Assert.Equal(Errno.None, k.MmapDevice("gpu0", 0, 0, 16 * MiB, true, Prot.Read | Prot.Write, null, out var hva));
        var vma = k.Mm.VmaLookup(hva)!;
        Assert.Equal(VfioBarFlags | (flag ? VmFlags.VM_ALLOW_ANY_UNCACHED : 0), vma.Flags);
        Assert.Equal(MairIndex.MT_DEVICE_nGnRnE, vma.S1);
        Assert.True(vma.Ptes.IsEmpty); // BARs are populated on fault
        Assert.Equal(flag ? "rd wr sh mr mw me ms pf io de dd ?? " : "rd wr sh mr mw me ms pf io de dd ", Smaps.VmFlagsLine(vma.Flags));
    }

    [Fact]
    public void On_32_bit_the_BAR_mmap_sets_VM_NONE_for_the_flag()
    {
        var k = new SyncKernel(Policy("6.9", word: WordSize.Bits32));
        k.AddDevice(Gpu());
        Assert.Equal(Errno.None, k.MmapDevice("gpu0", 0, 0, 0x1000, true, Prot.Read, null, out var hva));
        Assert.False(k.Mm.VmaLookup(hva)!.Flags.HasAny(VmFlags.VM_ALLOW_ANY_UNCACHED));
    }

    [Theory]
    [InlineData("6.8", true)]
    [InlineData("6.9", true)]
    [InlineData("6.17", false)]
    public void Up_to_6_9_vm_pgoff_is_the_BAR_pfn_later_the_region_encoded_offset(string kernel, bool pfn)
    {
        var k = Host(kernel);
        Assert.Equal(Errno.None, k.MmapDevice("gpu0", 0, 0x2000, 0x1000, true, Prot.Read, null, out var hva));
        var bar = k.Device("gpu0").Region(0)!;
        var expected = pfn ? bar.PfnStart + 2 : VfioRegionIndex.PgOffOf(0, 0x2000);
        Assert.Equal(expected, k.Mm.VmaLookup(hva)!.PgOff);
    }

    [Fact]
    public void Default_placement_is_top_down_below_0x7f0000000000_aligned_to_the_size()
    {
        var k = Host();
        Assert.Equal(Errno.None, k.MmapDevice("gpu0", 0, 0, 16 * MiB, true, Prot.Read, null, out var a));
        Assert.Equal(Errno.None, k.MmapDevice("gpu0", 4, 0, 0x1000, true, Prot.Read, null, out var b));
        Assert.Equal(0x7f00_0000_0000UL - 16 * MiB, a);
        Assert.Equal(a - 0x1000, b);
        Assert.Equal(0UL, a % (16 * MiB));
    }

    [Fact]
    public void MAP_FIXED_places_the_mapping_and_replaces_what_was_there()
    {
        var k = Host();
        Assert.Equal(Errno.None, k.MmapDevice("gpu0", 0, 0, 0x4000, true, Prot.Read, 0x1000_0000, out var a));
        Assert.Equal(0x1000_0000UL, a);
        Assert.Equal(Errno.None, k.MmapRam(0x2000, 0x1000_1000, out _));
        Assert.Equal(3, k.Mm.Vmas.Length); // split around the new mapping
        Assert.Equal(Errno.EINVAL, k.MmapRam(0x1000, 0x1000_0800, out _));
    }
}

public class OtherVfioDriverMmapTests
{
    private static SyncKernel Host(VfioDevice d, string kernel = "6.9")
    {
        var k = new SyncKernel(Policy(kernel));
        k.AddDevice(d);
        return k;
    }

    [Theory]
    [InlineData("6.8", VfioRegionIndex.NvgraceResmem, false, MairIndex.MT_NORMAL_NC)]
    [InlineData("6.9", VfioRegionIndex.NvgraceResmem, true, MairIndex.MT_NORMAL_NC)]
    [InlineData("6.9", VfioRegionIndex.NvgraceUsemem, false, MairIndex.MT_NORMAL)]
    [InlineData("6.17", VfioRegionIndex.NvgraceUsemem, false, MairIndex.MT_NORMAL)]
    public void Nvgrace_resmem_is_write_combined_with_the_flag_usemem_cacheable_without(string kernel, int region, bool flag, MairIndex s1)
    {
        var k = Host(Nvgrace(), kernel);
        Assert.Equal(Errno.None, k.MmapDevice("gh0", region, 0, 2 * MiB, true, Prot.Read | Prot.Write, null, out var hva));
        var vma = k.Mm.VmaLookup(hva)!;
        Assert.Equal(flag, vma.Flags.Has(VmFlags.VM_ALLOW_ANY_UNCACHED));
        Assert.True(vma.Flags.Has(VmFlags.VM_PFNMAP | VmFlags.VM_IO | VmFlags.VM_DONTEXPAND | VmFlags.VM_DONTDUMP));
        Assert.Equal(s1, vma.S1);
        Assert.False(vma.Ptes.IsEmpty); // remap_pfn_range at mmap time
    }

    [Fact]
    public void Nvgrace_refuses_a_request_past_the_device_memory()
    {
        var k = Host(Nvgrace());
        Assert.Equal(Errno.EINVAL, k.MmapDevice("gh0", VfioRegionIndex.NvgraceResmem, 0, 4 * MiB, true, Prot.Read, null, out _));
    }

    [Fact]
    public void Nvgrace_reports_EOVERFLOW_when_offset_plus_length_wraps()
    {
        var req = new VfioMmapRequest(VfioRegionIndex.NvgraceUsemem, ulong.MaxValue - 0xFFF, 0x2000, VmFlags.VM_SHARED);
        Assert.Equal(Errno.EOVERFLOW, VfioDeviceDecider.Mmap(Nvgrace(), Policy("6.9"), req, out _, out _));
    }

    [Fact]
    public void Nvgrace_other_regions_go_to_vfio_pci_core_mmap() =>
        Assert.Equal(Errno.EINVAL, Host(Nvgrace()).MmapDevice("gh0", 7, 0, 0x1000, true, Prot.Read, null, out _));

    [Fact]
    public void Vfio_platform_maps_device_memory_without_the_flag()
    {
        var k = Host(Platform());
        Assert.Equal(Errno.None, k.MmapDevice("plat0", 0, 0, 0x10000, true, Prot.Read | Prot.Write, null, out var hva));
        var vma = k.Mm.VmaLookup(hva)!;
        Assert.False(vma.Flags.Has(VmFlags.VM_ALLOW_ANY_UNCACHED));
        Assert.Equal(MairIndex.MT_DEVICE_nGnRnE, vma.S1);
    }

    [Theory]
    [InlineData(0, 0UL, 0x10000UL, false, Errno.EINVAL)]  // MAP_PRIVATE
    [InlineData(1, 0UL, 0x1000UL, true, Errno.EINVAL)]    // no such region
    [InlineData(0, 0x8000UL, 0x10000UL, true, Errno.EINVAL)] // past the region
    public void Vfio_platform_mmap_checks(int region, ulong offset, ulong size, bool shared, Errno expected) =>
        Assert.Equal(expected, Host(Platform()).MmapDevice("plat0", region, offset, size, shared, Prot.Read, null, out _));
}
