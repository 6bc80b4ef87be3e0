using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using Akka.Actor;
using static ActorSim.Actors.Tests.Fixtures;

namespace ActorSim.Actors.Tests;

/// <summary>The mm's fault passes: batches that arrive while it is busy are resolved together and
/// written as one entry, each answered on its own; the PTE events are published before the answers
/// go out, so nothing downstream sees a decision before the PTE it used.</summary>
public class MmFaultPassTests() : Akka.TestKit.Xunit2.TestKit(SimHost.BaseConfig(false))
{
    private const ulong RamGpa = 0x4000_0000UL;

    [Fact]
    public async Task Batches_that_wait_while_the_mm_is_busy_share_one_pass_and_one_entry()
    {
        var mm = Sys.ActorOf(MmActor.Props("t/mm-pass", Policy("6.9")));
        var device = CreateTestProbe();
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events, typeof(DomainEventPublished));
        await mm.Ask<MmResult>(new MmRegisterDevice("gpu0", device));
        var bar = new VmaTemplate(16 * MiB, BarFlags, 1, MairIndex.MT_DEVICE_nGnRnE, new VmaBacking(BackingKind.VfioPci, "gpu0", 0, 0, 0x8000000), false);
        var barHva = (await mm.Ask<MmResult>(new MmInstallVma(BarHva, bar))).Hva;
        var ramHva = (await mm.Ask<MmResult>(new MmMapRam(MiB, null))).Hva;
        var barSlot = new Memslot(1, BarGpa, 16 * MiB, barHva, MemslotFlags.None);
        var ramSlot = new Memslot(0, RamGpa, MiB, ramHva, MemslotFlags.None);
        FaultStart Ram(string vm, ulong page) => new(vm, 0, RamGpa + page * 0x1000, AccessOp.Write, null, ramSlot, ramHva + page * 0x1000, 0);
        events.ReceiveWhile(TimeSpan.FromMilliseconds(200), m => m); // the set-up's own events

        var vm1 = CreateTestProbe();
        var vm2 = events; // one probe for vm2's answer and the published events: their order shows
        var vm3 = CreateTestProbe();
        // vm1's batch needs the driver: the mm is busy until it answers.
        mm.Tell(new MmFaultInPfnBatch(1, [new FaultStart("vm1", 0, BarGpa + 0x3000, AccessOp.Read, null, barSlot, barHva + 0x3000, 0)]), vm1);
        var fault = device.ExpectMsg<VfioMmapFault>();
        mm.Tell(new MmFaultInPfnBatch(7, [Ram("vm2", 1), Ram("vm2", 5)]), vm2);
        mm.Tell(new MmFaultInPfnBatch(9, [Ram("vm3", 2)]), vm3);
        vm3.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        device.Reply(new DriverFaultAnswer(false, fault.Hva, fault.Hva + 0x1000));

        Assert.Equal(1, vm1.ExpectMsg<MmPfnBatchAnswer>().BatchId);
        var first = events.ExpectMsg<DomainEventPublished>();
        Assert.Equal(new UserPtesPopulated(barHva + 0x3000, barHva + 0x4000), first.Event);
        // vm2's and vm3's batches: one pass, one entry with their three pages in order.
        var second = events.ExpectMsg<DomainEventPublished>();
        var batch = Assert.IsType<UserPtesPopulatedBatch>(second.Event);
        Assert.Equal([1UL, 5, 2], batch.Ranges.Select(r => (r.Start - ramHva) / 0x1000));
        var a2 = vm2.ExpectMsg<MmPfnBatchAnswer>(); // after the events that hold its PTEs
        var a3 = vm3.ExpectMsg<MmPfnBatchAnswer>();
        Assert.Equal((7L, 2, 9L, 1), (a2.BatchId, a2.Answers.Length, a3.BatchId, a3.Answers.Length));
        Assert.All(a2.Answers.Concat(a3.Answers), a => Assert.True(a.Pfn.Status == PfnStatus.Ok && a.Pfn.IsMapMemory));
        events.ExpectNoMsg(TimeSpan.FromMilliseconds(100));

        // The state has the PTEs once the pass is durable: a later request sees them.
        var state = await mm.Ask<AddressSpace>(new MmGetState());
        Assert.True(new ulong[] { 1, 5, 2 }.All(p => state.VmaLookup(ramHva)!.Ptes.Contains(ramHva + p * 0x1000)));
    }

    [Fact]
    public async Task A_page_populated_earlier_in_a_pass_is_present_for_the_faults_after_it()
    {
        // The pass folds its PTEs into its working state lazily; a fault on a page the pass already
        // populated must still find the PTE (no second populate, the same answer).
        var mm = Sys.ActorOf(MmActor.Props("t/mm-pass-again", Policy("6.9")));
        var events = CreateTestProbe();
        var ramHva = (await mm.Ask<MmResult>(new MmMapRam(MiB, null))).Hva;
        Sys.EventStream.Subscribe(events, typeof(DomainEventPublished));
        var ramSlot = new Memslot(0, RamGpa, MiB, ramHva, MemslotFlags.None);
        FaultStart Ram(ulong page) => new("vm1", 0, RamGpa + page * 0x1000, AccessOp.Write, null, ramSlot, ramHva + page * 0x1000, 0);
        var vm = CreateTestProbe();
        mm.Tell(new MmFaultInPfnBatch(1, [Ram(3), Ram(3), Ram(4), Ram(3), Ram(4)]), vm);
        var batch = Assert.IsType<UserPtesPopulatedBatch>(events.ExpectMsg<DomainEventPublished>().Event);
        Assert.Equal([3UL, 4], batch.Ranges.Select(r => (r.Start - ramHva) / 0x1000));
        var answer = vm.ExpectMsg<MmPfnBatchAnswer>();
        Assert.Equal(5, answer.Answers.Length);
        Assert.All(answer.Answers, a => Assert.True(a.Pfn.Status == PfnStatus.Ok && a.Pfn.IsMapMemory));
        Assert.Equal(answer.Answers[0].Pfn, answer.Answers[1].Pfn);
        events.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        var state = await mm.Ask<AddressSpace>(new MmGetState());
        Assert.Equal($"[0x{ramHva + 0x3000:x},0x{ramHva + 0x5000:x})", state.VmaLookup(ramHva)!.Ptes.ToString());
    }
}
