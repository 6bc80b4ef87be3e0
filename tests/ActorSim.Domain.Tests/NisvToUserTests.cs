using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Simulation;
using static ActorSim.Domain.Tests.TestHosts;

namespace ActorSim.Domain.Tests;

/// <summary>KVM_CAP_ARM_NISV_TO_USER (kvm_vm_ioctl_enable_cap, arch/arm64/kvm/arm.c): a VM whose VMM enabled
/// it gets KVM_EXIT_ARM_NISV where io_mem_abort (arch/arm64/kvm/mmio.c) finds no valid syndrome, instead
/// of -ENOSYS from KVM_RUN. Everything decided before io_mem_abort, or in user_mem_abort, is as without it.
/// vm1 has no capability, vm2 has it; both have a 1 MiB read-only slot 2 at 4 GiB.</summary>
public class NisvToUserTests
{
    private const ulong ReadOnlyGpa = 0x1_0000_0000;
    private const ulong NoSlotGpa = 0x900_0000;

    private static SyncKernel Host()
    {
        var k = WithGpuAndVm(Policy("6.9"), out _);
        var (vm2, errno, _) = KvmVmDecider.CreateVm("vm2", 0, false, systemSupportsMte: false, nisvToUser: true);
        Assert.Equal(Errno.None, errno);
        k.AddVm(vm2!);
        foreach (var vm in new[] { "vm1", "vm2" })
        {
            Assert.Equal(Errno.None, k.MmapRam(MiB, null, out var ram));
            Assert.Equal(Errno.None, k.SetMemslot(vm, 2, MemslotFlags.KVM_MEM_READONLY, ReadOnlyGpa, MiB, ram));
        }
        return k;
    }

    private static DecisionRecord Access(SyncKernel k, string vm, ulong gpa, AccessOp op, AbortSyndrome s = AbortSyndrome.None)
    {
        var d = k.Access(vm, 0, gpa, op, syndrome: s).Decision!;
        Assert.True(d.Verifies(), d.ToString());
        Assert.Equal(vm == "vm2", d.Inputs.NisvToUser); // the VM's, on every decision
        return d;
    }

    private static (FaultResult, Errno, DecisionPath) Of(DecisionRecord d) => (d.Outcome.Result, d.Outcome.Errno, d.Outcome.Path);

    [Fact]
    public void The_capability_is_taken_on_any_host_and_refuses_nothing()
    {
        var (vm, errno, mteRefused) = KvmVmDecider.CreateVm("vm", 36, mte: true, systemSupportsMte: true, nisvToUser: true);
        Assert.Equal((Errno.None, false), (errno, mteRefused));
        Assert.Equal((true, true, 36), (vm!.NisvToUser, vm.HasMte, vm.IpaBits));
        Assert.False(KvmVmDecider.CreateVm("vm", 0, false, false).Vm!.NisvToUser);
        // What refuses a VM still does, with the capability or without it.
        Assert.Equal(Errno.EINVAL, KvmVmDecider.CreateVm("vm", 31, false, false, nisvToUser: true).Errno);
        Assert.True(KvmVmDecider.CreateVm("vm", 0, true, false, nisvToUser: true).MteRefused);
    }

    [Theory]
    [InlineData(NoSlotGpa, AccessOp.Read, DecisionPath.NoMemslotMmio)]
    [InlineData(NoSlotGpa, AccessOp.Write, DecisionPath.NoMemslotMmio)]
    [InlineData(ReadOnlyGpa + 0x1000, AccessOp.Write, DecisionPath.ReadOnlySlotWriteMmio)]
    public void Where_io_mem_abort_finds_no_syndrome_the_VMM_gets_KVM_EXIT_ARM_NISV_instead_of_ENOSYS(ulong gpa, AccessOp op, DecisionPath plainPath)
    {
        var k = Host();
        Assert.Equal((FaultResult.Error, Errno.ENOSYS, DecisionPath.NoValidSyndrome), Of(Access(k, "vm1", gpa, op, AbortSyndrome.Nisv)));
        Assert.Equal((FaultResult.NisvExit, Errno.None, DecisionPath.NisvExitToUser), Of(Access(k, "vm2", gpa, op, AbortSyndrome.Nisv)));
        // Nothing is mapped: the VMM decodes the instruction itself.
        Assert.Null(k.Vm("vm2").Stage2.Lookup(gpa));
        // An access with a valid syndrome is emulated as it was.
        Assert.Equal((FaultResult.MmioExit, Errno.None, plainPath), Of(Access(k, "vm2", gpa, op)));
        Assert.Empty(k.CheckInvariants());
    }

    [Fact]
    public void What_is_decided_before_io_mem_abort_or_in_user_mem_abort_does_not_read_the_capability()
    {
        var k = Host();
        foreach (var vm in new[] { "vm1", "vm2" })
        {
            // A fetch is an injected abort, a stage-1 walk an injected data abort, cache maintenance skipped.
            Assert.Equal((FaultResult.GuestAbort, Errno.ENOEXEC, DecisionPath.NoMemslotExec), Of(Access(k, vm, NoSlotGpa, AccessOp.Exec)));
            Assert.Equal((FaultResult.GuestAbort, Errno.None, DecisionPath.S1ptwInjectDabt), Of(Access(k, vm, NoSlotGpa, AccessOp.Read, AbortSyndrome.S1ptw | AbortSyndrome.Nisv)));
            Assert.Equal((FaultResult.InstructionSkipped, Errno.None, DecisionPath.CacheMaintenanceSkipped),
                Of(Access(k, vm, NoSlotGpa, AccessOp.Write, AbortSyndrome.Cm | AbortSyndrome.Nisv)));
            // A load without a syndrome from a read-only slot maps it read-only: user_mem_abort reads no syndrome.
            var read = Access(k, vm, ReadOnlyGpa, AccessOp.Read, AbortSyndrome.Nisv);
            Assert.Equal((FaultResult.Mapped, DecisionPath.MapLeaf), (read.Outcome.Result, read.Outcome.Path));
            Assert.False(read.Outcome.Leaf!.Value.Writable);
        }
        // Cache maintenance on the read-only slot is a write fault without a syndrome: io_mem_abort's again.
        Assert.Equal((FaultResult.Error, Errno.ENOSYS, DecisionPath.NoValidSyndrome), Of(Access(k, "vm1", ReadOnlyGpa + 0x2000, AccessOp.Read, AbortSyndrome.Cm | AbortSyndrome.Nisv)));
        Assert.Equal((FaultResult.NisvExit, Errno.None, DecisionPath.NisvExitToUser), Of(Access(k, "vm2", ReadOnlyGpa + 0x2000, AccessOp.Read, AbortSyndrome.Cm | AbortSyndrome.Nisv)));
    }

    [Fact]
    public void The_record_carries_the_capability_so_deciding_again_without_it_differs()
    {
        var k = Host();
        var d = Access(k, "vm2", NoSlotGpa, AccessOp.Write, AbortSyndrome.Nisv);
        var without = d with { Inputs = d.Inputs with { NisvToUser = false } };
        Assert.False(without.Verifies());
        Assert.Equal(DecisionPath.NoValidSyndrome, KvmHandleGuestAbort.Decide(without.Inputs).Path);
        // Re-decided under another kernel, the VM keeps its capability: the exit stays.
        var replay = new Replay(_ => Policy("6.17"));
        replay.Apply(1, "kvm-vm2", new Stage2FaultResolved(d));
        Assert.Equal(0, replay.Mismatches);
        Assert.Empty(replay.Changes);
    }
}
