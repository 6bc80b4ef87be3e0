using ActorSim.Domain.Kvm;
using ActorSim.Domain.Simulation;

namespace ActorSim.Domain.Tests;

/// <summary>`actorsim kernels`' table (<see cref="KernelComparison"/>): each kind of page mmapped by its
/// driver and faulted in under each kernel; the cells are the kernel's answers (kernel-model.md).</summary>
public class KernelComparisonTests
{
    private static IReadOnlyList<string> Row(IReadOnlyList<KernelComparisonRow> rows, string page, AccessOp op = AccessOp.Read) =>
        rows.Single(r => r.Page.StartsWith(page, StringComparison.Ordinal) && r.Op == op).Outcomes;

    [Fact]
    public void Columns_are_the_modelled_kernels_in_order() => Assert.Equal(["6.8", "6.9", "6.17"], KernelComparison.Kernels);

    [Fact]
    public void With_FWB_and_DIC_each_kernel_maps_each_page_as_the_kernel_does()
    {
        var rows = KernelComparison.Rows(fwb: true, dic: true);
        Assert.All(rows, r => Assert.Equal(3, r.Outcomes.Count));
        Assert.Equal(["Mapped Normal-WB", "Mapped Normal-WB", "Mapped Normal-WB"], Row(rows, "RAM"));
        // 8c47ce3e1d2c (v6.9): VM_ALLOW_ANY_UNCACHED, which vfio-pci sets from v6.9, makes device memory Normal-NC.
        Assert.Equal(["Mapped Device-nGnRE", "Mapped Normal-NC", "Mapped Normal-NC"], Row(rows, "vfio-pci BAR"));
        // An exec fault on device memory: -ENOEXEC, an instruction abort injected, under every kernel.
        Assert.Equal(["GuestAbort ENOEXEC", "GuestAbort ENOEXEC", "GuestAbort ENOEXEC"], Row(rows, "vfio-pci BAR", AccessOp.Exec));
        // vfio-platform never sets the flag: a device not known to be safe stays Device-nGnRE.
        Assert.Equal(["Mapped Device-nGnRE", "Mapped Device-nGnRE", "Mapped Device-nGnRE"], Row(rows, "vfio-platform"));
        // 0c67288e0c8b (v6.17): cacheable PFNMAP memory is mapped cacheable.
        Assert.Equal(["Mapped Device-nGnRE", "Mapped Device-nGnRE", "Mapped Normal-WB"], Row(rows, "nvgrace-gpu usemem"));
        Assert.Equal(["Mapped Device-nGnRE", "Mapped Normal-NC", "Mapped Normal-NC"], Row(rows, "nvgrace-gpu resmem"));
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void Without_FWB_or_DIC_6_17_refuses_a_memslot_over_cacheable_PFNMAP(bool fwb, bool dic)
    {
        // kvm_arch_prepare_memory_region (v6.17): a cacheable PFNMAP VMA needs kvm_supports_cacheable_pfnmap().
        var rows = KernelComparison.Rows(fwb, dic);
        Assert.Equal(["Mapped Device-nGnRE", "Mapped Device-nGnRE", "KVM_SET_USER_MEMORY_REGION EINVAL"], Row(rows, "nvgrace-gpu usemem"));
        Assert.Equal(["Mapped Device-nGnRE", "Mapped Normal-NC", "Mapped Normal-NC"], Row(rows, "vfio-pci BAR"));
        // RAM is Normal-WB either way: MT_S2_NORMAL (0xf) without FWB, MT_S2_FWB_NORMAL (6) with it.
        Assert.Equal(["Mapped Normal-WB", "Mapped Normal-WB", "Mapped Normal-WB"], Row(rows, "RAM"));
    }
}
