using ActorSim.Domain;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Simulation;
using Akka.Actor;
using static ActorSim.Actors.Tests.Fixtures;

namespace ActorSim.Actors.Tests;

/// <summary>Each actor's protocol, driven message by message through TestProbes.</summary>
public class MmActorProtocolTests() : Akka.TestKit.Xunit2.TestKit(SimHost.BaseConfig(false))
{
    [Fact]
    public async Task Munmap_waits_for_every_VMs_invalidate_ack_before_it_changes_anything()
    {
        var mm = Sys.ActorOf(MmActor.Props("t/mm", Policy("6.9")));
        var vm1 = CreateTestProbe();
        var vm2 = CreateTestProbe();
        await mm.Ask<MmResult>(new MmSubscribeNotifier("vm1", vm1));
        await mm.Ask<MmResult>(new MmSubscribeNotifier("vm2", vm2));
        var map = await mm.Ask<MmResult>(new MmMapRam(MiB, null));

        mm.Tell(new MmMunmap(map.Hva, MiB), TestActor);
        var s1 = vm1.ExpectMsg<MmuInvalidateRangeStart>(s => s.Start == map.Hva && s.End == map.Hva + MiB);
        var s2 = vm2.ExpectMsg<MmuInvalidateRangeStart>();
        mm.Tell(new MmGetVmas(map.Hva, map.Hva + 1), TestActor); // waits, like mmap_lock
        vm1.Reply(new MmuInvalidateAck(s1.Id, "vm1"));
        ExpectNoMsg(TimeSpan.FromMilliseconds(150)); // one ack is not enough
        vm2.Reply(new MmuInvalidateAck(s2.Id, "vm2"));
        vm1.ExpectMsg<MmuInvalidateRangeEnd>();
        vm2.ExpectMsg<MmuInvalidateRangeEnd>();
        Assert.Equal(Errno.None, ExpectMsg<MmResult>().Errno);
        Assert.Empty(ExpectMsg<MmVmas>().Vmas);
    }

    [Fact]
    public async Task A_pfn_lookup_on_a_BAR_without_a_PTE_asks_the_device_and_reports_SIGBUS()
    {
        var mm = Sys.ActorOf(MmActor.Props("t/mm2", Policy("6.17")));
        var device = CreateTestProbe();
        await mm.Ask<MmResult>(new MmRegisterDevice("gpu0", device));
        var t = new VmaTemplate(16 * MiB, BarFlags, 1, MairIndex.MT_DEVICE_nGnRnE, new VmaBacking(BackingKind.VfioPci, "gpu0", 0, 0, 0x8000000), false);
        var hva = (await mm.Ask<MmResult>(new MmInstallVma(BarHva, t))).Hva;
        var slot = new Memslot(1, BarGpa, 16 * MiB, hva, MemslotFlags.None);
        var f = new FaultStart("vm1", 0, BarGpa + 0x3000, AccessOp.Read, null, slot, hva + 0x3000, 0);

        mm.Tell(new MmFaultInPfnBatch(1, [f, f]), TestActor);
        var fault = device.ExpectMsg<VfioMmapFault>(x => x.Hva == hva + 0x3000);
        device.Reply(DriverFaultAnswer.SigBus);
        // the second lookup asks again: SIGBUS installs nothing
        device.ExpectMsg<VfioMmapFault>();
        device.Reply(new DriverFaultAnswer(false, fault.Hva, fault.Hva + 0x1000));
        var answer = ExpectMsg<MmPfnBatchAnswer>();
        Assert.Equal(PfnStatus.Sigbus, answer.Answers[0].Pfn.Status);
        Assert.Equal((PfnStatus.Ok, 0x8000003UL, false), (answer.Answers[1].Pfn.Status, answer.Answers[1].Pfn.Pfn, answer.Answers[1].Pfn.IsMapMemory));
    }
}

public class VfioActorProtocolTests() : Akka.TestKit.Xunit2.TestKit(SimHost.BaseConfig(false))
{
    [Fact]
    public void A_BAR_mmap_asks_the_mm_to_install_the_VMA_the_driver_prepared()
    {
        var mm = CreateTestProbe();
        var vfio = Sys.ActorOf(VfioActor.Props("t/vfio-gpu0", Gpu(), Policy("6.9"), mm));
        vfio.Tell(new VfioMmapRegion(0, 0, 16 * MiB, true, Prot.Read | Prot.Write, null), TestActor);
        var install = mm.ExpectMsg<MmInstallVma>();
        Assert.Equal(BarFlags, install.Template.Flags);
        Assert.Equal(MairIndex.MT_DEVICE_nGnRnE, install.Template.S1);
        mm.Reply(new MmResult(Errno.None, 0x7000_0000_0000));
        Assert.Equal(new VfioMmapResult(Errno.None, 0x7000_0000_0000), ExpectMsg<VfioMmapResult>());
    }

    [Fact]
    public void A_refused_mmap_never_reaches_the_mm()
    {
        var mm = CreateTestProbe();
        var vfio = Sys.ActorOf(VfioActor.Props("t/vfio-gpu1", Gpu(), Policy("6.9"), mm));
        vfio.Tell(new VfioMmapRegion(0, 0, 4096, false, Prot.Read, null), TestActor);
        Assert.Equal(Errno.EINVAL, ExpectMsg<VfioMmapResult>().Errno);
        mm.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public void Memory_disable_zaps_first_answers_faults_SIGBUS_meanwhile_and_then_reports()
    {
        var mm = CreateTestProbe();
        var vfio = Sys.ActorOf(VfioActor.Props("t/vfio-gpu2", Gpu(), Policy("6.9"), mm));
        vfio.Tell(new VfioSetMemory(false), TestActor);
        var zap = mm.ExpectMsg<MmZapMappingRange>(z => z.Device == "gpu0" && z.Regions.SequenceEqual([0]));
        var zapSender = mm.LastSender;
        vfio.Tell(new VfioMmapFault(BarHva, BarHva + MiB, BarHva), TestActor);
        Assert.True(ExpectMsg<DriverFaultAnswer>().Sigbus);
        vfio.Tell(new VfioReset(), TestActor); // waits behind the zap
        zapSender.Tell(new MmResult(Errno.None), mm);
        Assert.Equal(Errno.None, ExpectMsg<VfioResult>().Errno);
        // the reset then runs: it zaps again
        mm.ExpectMsg<MmZapMappingRange>();
        _ = zap;
    }
}

/// <summary>The race the MMU notifier exists for: a fault whose pfn answer is in flight while an
/// invalidation starts (and ends) must retry and never install a stale leaf.</summary>
public class KvmActorRaceTests() : Akka.TestKit.Xunit2.TestKit(SimHost.BaseConfig(false))
{
    private (IActorRef Kvm, Akka.TestKit.TestProbe Mm) VmWithBarSlot(string id)
    {
        var mm = CreateTestProbe();
        var kvm = Sys.ActorOf(KvmActor.Props($"t/kvm-{id}", KvmVm.Create("vm1"), Policy("6.9"), mm));
        kvm.Tell(new KvmSetMemslot(1, MemslotFlags.None, BarGpa, 16 * MiB, BarHva), TestActor);
        mm.ExpectMsg<MmGetVmas>();
        mm.Reply(new MmVmas([BarVma()]));
        Assert.Equal(Errno.None, ExpectMsg<KvmResult>().Errno);
        return (kvm, mm);
    }

    private static MmPfnAnswer Answer(ulong gpa) =>
        new(BarVma().Snapshot(), BarHva + (gpa - BarGpa), PfnLookup.Of((PhysMap.PciMmioBase >> 12) + ((gpa - BarGpa) >> 12), true));

    private AccessResult Fault(IActorRef kvm, Akka.TestKit.TestProbe mm, Action<IActorRef> whileInFlight)
    {
        const ulong gpa = BarGpa + 0x1000;
        kvm.Tell(new KvmFaultBatch(1, [new GuestAbort(1, 0, gpa, AccessOp.Read, TestActor)]), TestActor);
        var req = mm.ExpectMsg<MmFaultInPfnBatch>();
        whileInFlight(kvm);
        kvm.Tell(new MmPfnBatchAnswer(req.BatchId, [Answer(gpa)]), mm);
        return ExpectMsg<KvmFaultBatchResult>().Results.Single();
    }

    [Fact]
    public async Task Without_a_race_the_fault_maps_Normal_NC()
    {
        var (kvm, mm) = VmWithBarSlot("a");
        var r = Fault(kvm, mm, _ => { });
        Assert.Equal(FaultResult.Mapped, r.Outcome.Result);
        Assert.NotNull((await kvm.Ask<KvmLeaf>(new KvmGetLeaf(BarGpa + 0x1000))).Leaf);
    }

    [Fact]
    public async Task An_invalidation_that_starts_and_ends_while_the_pfn_is_in_flight_makes_the_fault_retry()
    {
        var (kvm, mm) = VmWithBarSlot("b");
        var r = Fault(kvm, mm, k =>
        {
            k.Tell(new MmuInvalidateRangeStart(9, BarHva, BarHva + 16 * MiB), mm);
            mm.ExpectMsg<MmuInvalidateAck>(a => a.Id == 9);
            k.Tell(new MmuInvalidateRangeEnd(9, BarHva, BarHva + 16 * MiB), mm);
        });
        Assert.Equal((FaultResult.Retry, DecisionPath.InvalidateRetry), (r.Outcome.Result, r.Outcome.Path));
        Assert.Equal(1UL, r.Decision!.Inputs.SeqAtLock - r.Decision.Inputs.SampledSeq);
        Assert.Null((await kvm.Ask<KvmLeaf>(new KvmGetLeaf(BarGpa + 0x1000))).Leaf);
    }

    [Fact]
    public void An_invalidation_still_in_progress_makes_the_fault_retry()
    {
        var (kvm, mm) = VmWithBarSlot("c");
        var r = Fault(kvm, mm, k =>
        {
            k.Tell(new MmuInvalidateRangeStart(3, BarHva, BarHva + 4096), mm);
            mm.ExpectMsg<MmuInvalidateAck>();
        });
        Assert.Equal(FaultResult.Retry, r.Outcome.Result);
        Assert.Equal(1, r.Decision!.Inputs.InProgressAtLock);
    }

    [Fact]
    public void An_invalidation_of_an_unrelated_range_does_not_count()
    {
        var (kvm, mm) = VmWithBarSlot("d");
        var r = Fault(kvm, mm, k =>
        {
            k.Tell(new MmuInvalidateRangeStart(4, 0x1000, 0x2000), mm);
            mm.ExpectMsg<MmuInvalidateAck>();
            k.Tell(new MmuInvalidateRangeEnd(4, 0x1000, 0x2000), mm);
        });
        Assert.Equal(FaultResult.Mapped, r.Outcome.Result);
    }

    [Fact]
    public async Task A_memslot_change_waits_until_no_fault_is_in_flight()
    {
        var (kvm, mm) = VmWithBarSlot("e");
        kvm.Tell(new KvmFaultBatch(1, [new GuestAbort(1, 0, BarGpa + 0x1000, AccessOp.Read, TestActor)]), TestActor);
        var req = mm.ExpectMsg<MmFaultInPfnBatch>();
        kvm.Tell(new KvmSetMemslot(1, MemslotFlags.None, 0, 0, 0), TestActor); // delete slot 1
        mm.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        kvm.Tell(new MmPfnBatchAnswer(req.BatchId, [Answer(BarGpa + 0x1000)]), mm);
        Assert.Equal(FaultResult.Mapped, ExpectMsg<KvmFaultBatchResult>().Results[0].Outcome.Result);
        mm.ExpectMsg<MmGetVmas>();
        mm.Reply(new MmVmas([]));
        Assert.Equal(Errno.None, ExpectMsg<KvmResult>().Errno);
        Assert.Null((await kvm.Ask<KvmLeaf>(new KvmGetLeaf(BarGpa + 0x1000))).Leaf);
    }
}

public class BatcherAndVcpuProtocolTests() : Akka.TestKit.Xunit2.TestKit(SimHost.BaseConfig(false))
{
    private static AccessResult Mapped => new(null, new FaultOutcome(FaultResult.AlreadyMapped, Errno.None, null, default, DecisionPath.NoFault));

    [Fact]
    public void A_flood_past_the_bounded_inbox_is_rejected_and_nothing_waits_beyond_the_bound()
    {
        var kvm = CreateTestProbe();
        var batcher = Sys.ActorOf(Stage2FaultBatcher.Props(kvm, maxBatch: 4, capacity: 8));
        for (var i = 0; i < 20; i++) batcher.Tell(new GuestAbort(i, i, BarGpa, AccessOp.Read, TestActor));
        var first = kvm.ExpectMsg<KvmFaultBatch>();
        Assert.Equal([0L, 1, 2, 3], first.Aborts.Select(a => a.Id));
        var rejected = ReceiveN(12).Cast<GuestAbortRejected>().Select(r => r.Id).ToArray();
        Assert.Equal(Enumerable.Range(8, 12).Select(i => (long)i), rejected);
        kvm.ExpectNoMsg(TimeSpan.FromMilliseconds(100)); // one batch in flight at a time
        batcher.Tell(new KvmFaultBatchResult(first.BatchId, [Mapped, Mapped, Mapped, Mapped]), kvm);
        Assert.Equal([0L, 1, 2, 3], ReceiveN(4).Cast<GuestAbortCompleted>().Select(c => c.Id));
        Assert.Equal([4L, 5, 6, 7], kvm.ExpectMsg<KvmFaultBatch>().Aborts.Select(a => a.Id));
    }

    [Fact]
    public void A_batch_closes_without_waiting_for_more_when_the_mailbox_is_drained()
    {
        var kvm = CreateTestProbe();
        var batcher = Sys.ActorOf(Stage2FaultBatcher.Props(kvm, maxBatch: 256, capacity: 1024));
        batcher.Tell(new GuestAbort(1, 0, BarGpa, AccessOp.Read, TestActor));
        Assert.Single(kvm.ExpectMsg<KvmFaultBatch>().Aborts);
    }

    [Fact]
    public void Regrouping_waits_for_the_vCPUs_just_answered_and_sends_them_with_those_waiting()
    {
        var kvm = CreateTestProbe();
        var batcher = Sys.ActorOf(Stage2FaultBatcher.Props(kvm, maxBatch: 256, capacity: 1024, regroupWait: TimeSpan.FromSeconds(30)));
        batcher.Tell(new GuestAbort(1, 0, BarGpa, AccessOp.Read, TestActor));
        var first = kvm.ExpectMsg<KvmFaultBatch>();
        Assert.Equal([1L], first.Aborts.Select(a => a.Id));
        // Two vCPUs fault while it is in flight; when it is answered they wait for vCPU 0 to come back.
        batcher.Tell(new GuestAbort(2, 1, BarGpa, AccessOp.Read, TestActor));
        batcher.Tell(new GuestAbort(3, 2, BarGpa, AccessOp.Read, TestActor));
        batcher.Tell(new KvmFaultBatchResult(first.BatchId, [Mapped]), kvm);
        ExpectMsg<GuestAbortCompleted>();
        kvm.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        batcher.Tell(new GuestAbort(4, 0, BarGpa, AccessOp.Read, TestActor));
        Assert.Equal([2L, 3, 4], kvm.ExpectMsg<KvmFaultBatch>().Aborts.Select(a => a.Id));
    }

    [Fact]
    public void Regrouping_sends_those_waiting_after_the_wait_when_an_answered_vCPU_does_not_fault_again()
    {
        var kvm = CreateTestProbe();
        // A wait much longer than the quiet period checked: on a loaded 2-core machine the check itself
        // once started a second late, after a 300 ms wait had already run out.
        var batcher = Sys.ActorOf(Stage2FaultBatcher.Props(kvm, maxBatch: 256, capacity: 1024, regroupWait: TimeSpan.FromSeconds(2)));
        batcher.Tell(new GuestAbort(1, 0, BarGpa, AccessOp.Read, TestActor));
        var first = kvm.ExpectMsg<KvmFaultBatch>();
        batcher.Tell(new GuestAbort(2, 1, BarGpa, AccessOp.Read, TestActor));
        batcher.Tell(new KvmFaultBatchResult(first.BatchId, [Mapped]), kvm);
        kvm.ExpectNoMsg(TimeSpan.FromMilliseconds(150));
        var second = kvm.ExpectMsg<KvmFaultBatch>(TimeSpan.FromSeconds(5));
        Assert.Equal([2L], second.Aborts.Select(a => a.Id));
        // After a wait ran out, the next batches go without waiting (a workload in rounds, a retry).
        batcher.Tell(new GuestAbort(3, 2, BarGpa, AccessOp.Read, TestActor));
        batcher.Tell(new KvmFaultBatchResult(second.BatchId, [Mapped]), kvm);
        Assert.Equal([3L], kvm.ExpectMsg<KvmFaultBatch>(TimeSpan.FromMilliseconds(100)).Aborts.Select(a => a.Id));
    }

    [Fact]
    public void A_vCPU_has_one_fault_outstanding_and_retries_after_a_rejection()
    {
        var batcher = CreateTestProbe();
        var vcpu = Sys.ActorOf(VcpuActor.Props(0, batcher, TimeSpan.FromMilliseconds(20)));
        vcpu.Tell(new VcpuRunAccess(BarGpa, AccessOp.Read), TestActor);
        vcpu.Tell(new VcpuRunAccess(BarGpa + 0x1000, AccessOp.Write), TestActor);
        var a = batcher.ExpectMsg<GuestAbort>(x => x.Gpa == BarGpa);
        batcher.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        a.ReplyTo.Tell(new GuestAbortRejected(a.Id));
        var again = batcher.ExpectMsg<GuestAbort>(x => x.Id == a.Id); // after the back-off
        again.ReplyTo.Tell(new GuestAbortCompleted(a.Id, Mapped));
        Assert.Equal(BarGpa, ExpectMsg<VcpuAccessDone>().Gpa);
        var b = batcher.ExpectMsg<GuestAbort>(x => x.Gpa == BarGpa + 0x1000 && x.Op == AccessOp.Write);
        b.ReplyTo.Tell(new GuestAbortCompleted(b.Id, Mapped));
        Assert.Equal(AccessOp.Write, ExpectMsg<VcpuAccessDone>().Op);
    }
}

public class InvariantCheckerActorTests() : Akka.TestKit.Xunit2.TestKit(SimHost.BaseConfig(false))
{
    [Fact]
    public async Task A_violating_event_is_reported_with_its_sequence_number()
    {
        var checker = Sys.ActorOf(InvariantChecker.Props("r/invariants", Policy("6.9"), "r/mm-vmm", new Dictionary<string, Domain.Vfio.VfioDevice>(),
            new Dictionary<string, KvmVm> { ["r/kvm-vm1"] = KvmVm.Create("vm1") }));
        await checker.Ask<Violations>(new GetViolations());
        Sys.EventStream.Subscribe(TestActor, typeof(InvariantViolated));
        var slot = new Memslot(1, BarGpa, 16 * MiB, BarHva, MemslotFlags.None);
        Sys.EventStream.Publish(new DomainEventPublished("r/kvm-vm1", new MemslotSet("vm1", slot, MemslotChange.Create, [])));
        var vma = BarVma().Snapshot();
        var inputs = new FaultInputs("vm1", 0, BarGpa, AccessOp.Read, false, 3, slot, BarHva, vma, BarHva,
            PfnLookup.Of(PhysMap.PciMmioBase >> 12, true), Policy("6.9"), false, 40, SampledSeq: 4, SeqAtLock: 5, InProgressAtLock: 0, null);
        // An outcome that ignored the retry check, as a broken kernel would.
        var broken = UserMemAbort.Decide(inputs with { SeqAtLock = 4 });
        Sys.EventStream.Publish(new DomainEventPublished("r/kvm-vm1", new Stage2FaultResolved(new DecisionRecord(inputs, broken))));
        var v = FishForMessage<InvariantViolated>(x => x.Violation.Invariant == "I5");
        Assert.Equal((2L, "r/kvm-vm1"), (v.Seq, v.Stream));
        // The leaf it installed has no user mapping behind it either (the checker has no mm events).
        Assert.Contains((await checker.Ask<Violations>(new GetViolations())).Items, x => x.Violation.Invariant == "I4");
        // The violation is an event of its own, in the checker's stream.
        Sys.EventStream.Subscribe(TestActor, typeof(DomainEventPublished));
        Sys.EventStream.Publish(new DomainEventPublished("r/kvm-vm1", new Stage2FaultResolved(new DecisionRecord(inputs with { Gpa = BarGpa + 0x1000 }, broken))));
        FishForMessage<DomainEventPublished>(x => x.Stream == "r/invariants" && x.Event is Domain.Invariants.InvariantViolationDetected { Invariant: "I5", Seq: 3 });
    }
}
