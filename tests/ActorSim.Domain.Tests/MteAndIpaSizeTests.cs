using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Stage2;
using static ActorSim.Domain.Tests.TestHosts;

namespace ActorSim.Domain.Tests;

/// <summary>A VM's IPA size and MTE, as KVM_CREATE_VM and KVM_ENABLE_CAP(KVM_CAP_ARM_MTE) set them, and
/// the host CPU's MTE, which decides which VMAs an MTE guest may have as memory (kernel-model.md §3.2
/// step 14 and kvm_arch_prepare_memory_region).</summary>
public class MteAndIpaSizeTests
{
    private const Prot Rw = Prot.Read | Prot.Write;

    [Fact]
    public void Only_anonymous_memory_on_a_CPU_with_MTE_is_VM_MTE_ALLOWED()
    {
        Assert.True(AddressSpaceDecider.CalcVmFlags(Rw, shared: false, anonymous: true, systemSupportsMte: true).Has(VmFlags.VM_MTE_ALLOWED));
        Assert.True(AddressSpaceDecider.CalcVmFlags(Rw, shared: true, anonymous: true, systemSupportsMte: true).Has(VmFlags.VM_MTE_ALLOWED));
        Assert.False(AddressSpaceDecider.CalcVmFlags(Rw, shared: false, anonymous: true).Has(VmFlags.VM_MTE_ALLOWED));
        // A device's mapping is a file's, never tag-capable.
        Assert.False(AddressSpaceDecider.CalcVmFlags(Rw, shared: true, anonymous: false, systemSupportsMte: true).Has(VmFlags.VM_MTE_ALLOWED));
        // Nothing else changes.
        Assert.Equal(AddressSpaceDecider.CalcVmFlags(Rw, false, true),
            AddressSpaceDecider.CalcVmFlags(Rw, false, true, systemSupportsMte: true) & ~VmFlags.VM_MTE_ALLOWED);
    }

    [Theory]
    [InlineData(0, KvmVm.DefaultIpaBits)]
    [InlineData(32, 32)]
    [InlineData(40, 40)]
    [InlineData(48, 48)]
    [InlineData(31, -1)]
    [InlineData(49, -1)]
    [InlineData(52, -1)]
    [InlineData(-1, -1)]
    public void The_IPA_size_is_32_to_the_limit_or_0_for_40(int asked, int got)
    {
        var (vm, errno, mteRefused) = KvmVmDecider.CreateVm("v", asked, mte: false, systemSupportsMte: false);
        Assert.Equal(got < 0 ? Errno.EINVAL : Errno.None, errno);
        Assert.False(mteRefused);
        Assert.Equal(got < 0 ? null : got, vm?.IpaBits);
    }

    [Fact]
    public void KVM_CAP_ARM_MTE_needs_a_CPU_with_MTE_and_the_IPA_size_is_checked_first()
    {
        Assert.Equal((Errno.EINVAL, true), (KvmVmDecider.CreateVm("v", 0, true, false).Errno, KvmVmDecider.CreateVm("v", 0, true, false).MteRefused));
        Assert.True(KvmVmDecider.CreateVm("v", 0, true, true).Vm!.HasMte);
        Assert.False(KvmVmDecider.CreateVm("v", 0, false, true).Vm!.HasMte);
        // KVM_CREATE_VM fails before there is a VM to enable the capability on.
        Assert.Equal((Errno.EINVAL, false), (KvmVmDecider.CreateVm("v", 60, true, false).Errno, KvmVmDecider.CreateVm("v", 60, true, false).MteRefused));
    }

    /// <summary>An MTE guest takes RAM the CPU can tag (and maps it Normal-WB) but no VFIO BAR, whose VMA is
    /// never VM_MTE_ALLOWED; on a CPU without MTE no VMA is, so not even its RAM.</summary>
    [Theory]
    [InlineData("6.9")]
    [InlineData("6.17")]
    public void An_MTE_guest_takes_RAM_but_not_a_VFIO_BAR(string kernel)
    {
        var k = new SyncKernel(Policy(kernel), systemSupportsMte: true);
        k.AddDevice(Gpu());
        k.AddVm(KvmVmDecider.CreateVm("vm1", 0, true, true).Vm!);
        k.AddVm(KvmVm.Create("vm2"));
        Assert.Equal(Errno.None, k.MmapRam(16 * MiB, null, out var ram));
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 0, MemslotFlags.None, RamGpa, 16 * MiB, ram));
        var r = k.Access("vm1", 0, RamGpa + 0x1000, AccessOp.Write);
        Assert.Equal(FaultResult.Mapped, r.Outcome.Result);
        Assert.True(r.Decision!.Inputs.VmHasMte);
        Assert.Equal(MemAttr.MT_S2_FWB_NORMAL, r.Outcome.Leaf!.Value.MemAttr);

        Assert.Equal(Errno.None, k.MmapDevice("gpu0", 0, 0, 16 * MiB, true, Rw, null, out var bar));
        Assert.Equal(Errno.EINVAL, k.SetMemslot("vm1", 1, MemslotFlags.None, BarGpa, 16 * MiB, bar));
        Assert.Equal(Errno.None, k.SetMemslot("vm2", 1, MemslotFlags.None, BarGpa, 16 * MiB, bar));
        Assert.Empty(k.CheckInvariants());

        var noMte = new SyncKernel(Policy(kernel));
        noMte.AddVm(KvmVm.Create("vm1", hasMte: true));
        Assert.Equal(Errno.None, noMte.MmapRam(16 * MiB, null, out ram));
        Assert.Equal(Errno.EINVAL, noMte.SetMemslot("vm1", 0, MemslotFlags.None, RamGpa, 16 * MiB, ram));
    }

    [Fact]
    public void A_smaller_IPA_space_refuses_a_memslot_past_it_and_aborts_an_access_past_it()
    {
        var k = new SyncKernel(Policy("6.9"));
        k.AddVm(KvmVmDecider.CreateVm("vm1", 36, false, false).Vm!);
        Assert.Equal(Errno.None, k.MmapRam(16 * MiB, null, out var ram));
        Assert.Equal(Errno.EFAULT, k.SetMemslot("vm1", 0, MemslotFlags.None, (1UL << 36) - 8 * MiB, 16 * MiB, ram));
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 0, MemslotFlags.None, (1UL << 36) - 16 * MiB, 16 * MiB, ram));
        Assert.Equal(FaultResult.Mapped, k.Access("vm1", 0, (1UL << 36) - 0x1000, AccessOp.Read).Outcome.Result);
        var past = k.Access("vm1", 0, 1UL << 36, AccessOp.Read);
        Assert.Equal((FaultResult.GuestAbort, DecisionPath.IpaOutOfRange), (past.Outcome.Result, past.Outcome.Path));
    }
}
