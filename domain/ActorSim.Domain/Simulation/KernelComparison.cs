using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Vfio;

namespace ActorSim.Domain.Simulation;

/// <summary>One kind of guest page, and what each rule set decided for a guest access to it.</summary>
public sealed record KernelComparisonRow(string Page, AccessOp Op, IReadOnlyList<string> Outcomes);

/// <summary>What each modelled kernel decides for one guest access to each kind of page (`actorsim
/// kernels`): not a table written by hand but the model run — for each kernel a <see cref="SyncKernel"/>
/// mmaps the page as its driver does (VFIO's flags are the kernel's), puts it in a memslot and takes the
/// guest's first access through user_mem_abort, as a scenario would.</summary>
public static class KernelComparison
{
    public static readonly string[] Kernels = ["6.8", "6.9", "6.17"];

    private const ulong Size = 2UL << 20, Gpa = 0x80_0000_0000UL;

    private sealed record PageKind(string Name, VfioDevice? Device, int Region, AccessOp Op = AccessOp.Read);

    private static IEnumerable<PageKind> Pages()
    {
        var gpu = DeviceLayout.Build("gpu0", VfioDriver.VfioPci, 0, [new RegionSpec(0, Size, BarType.Mem64, true)]);
        // A device not known to be safe with Normal-NC (a GICv2 vCPU interface, say): vfio-platform
        // never sets VM_ALLOW_ANY_UNCACHED.
        var platform = DeviceLayout.Build("plat0", VfioDriver.VfioPlatform, 0, [new RegionSpec(0, Size, BarType.Mem32, false)]);
        var grace = DeviceLayout.Build("gh0", VfioDriver.NvgraceGpu, 0,
        [
            new RegionSpec(VfioRegionIndex.NvgraceUsemem, Size, BarType.Mem64, true),
            new RegionSpec(VfioRegionIndex.NvgraceResmem, Size, BarType.Mem64, true),
        ]);
        yield return new("RAM (anonymous memory)", null, 0);
        yield return new("vfio-pci BAR", gpu, 0);
        yield return new("vfio-pci BAR", gpu, 0, AccessOp.Exec);
        yield return new("vfio-platform region", platform, 0);
        yield return new("nvgrace-gpu usemem (cacheable PFNMAP)", grace, VfioRegionIndex.NvgraceUsemem);
        yield return new("nvgrace-gpu resmem (write-combining)", grace, VfioRegionIndex.NvgraceResmem);
    }

    /// <summary>A row per kind of page, an outcome per kernel of <see cref="Kernels"/> (as replay
    /// describes one: "Mapped Normal-NC", "GuestAbort ENOEXEC"), on a CPU with or without FWB and DIC.</summary>
    public static IReadOnlyList<KernelComparisonRow> Rows(bool fwb, bool dic) =>
        [.. Pages().Select(p => new KernelComparisonRow(p.Name, p.Op, [.. Kernels.Select(k => Decide(p, KernelPolicy.Of(k, fwb, dic)))]))];

    private static string Decide(PageKind page, KernelPolicy policy)
    {
        var k = new SyncKernel(policy);
        k.AddVm(KvmVm.Create("vm1"));
        ulong hva;
        Errno err;
        if (page.Device is { } d)
        {
            k.AddDevice(d);
            err = k.MmapDevice(d.Name, page.Region, 0, Size, shared: true, Prot.Read | Prot.Write, null, out hva);
        }
        else
        {
            err = k.MmapRam(Size, null, out hva);
        }
        if (err != Errno.None) return $"mmap {err}";
        err = k.SetMemslot("vm1", 0, MemslotFlags.None, Gpa, Size, hva);
        if (err != Errno.None) return $"KVM_SET_USER_MEMORY_REGION {err}";
        return Replay.Describe(k.Access("vm1", 0, Gpa, page.Op).Outcome, policy.Cpu.Fwb);
    }
}
