using ActorSim.Domain;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Vfio;
using Akka.Actor;

namespace ActorSim.Actors;

// The messages the actors exchange, named after what the kernel's subsystems ask of each other.
// All immutable records. Replies carry the kernel's errno (Errno.None on success).

/// <summary>Every persisted domain event, published on the EventStream after it is persisted and
/// applied, with the stream (persistence id) it belongs to and the simulation's time when it was
/// published (<see cref="SimClock"/>, UTC ticks; 0 when not known).</summary>
public sealed record DomainEventPublished(string Stream, IDomainEvent Event, long Time = 0);

// ---- VMM -> VFIO ----
/// <summary>mmap(2) of a VFIO device region by the VMM.</summary>
public sealed record VfioMmapRegion(int Region, ulong Offset, ulong Length, bool Shared, Prot Prot, ulong? FixedHva);
public sealed record VfioMmapResult(Errno Errno, ulong Hva);
/// <summary>Config write to PCI_COMMAND.MEMORY.</summary>
public sealed record VfioSetMemory(bool Enabled);
/// <summary>VFIO_DEVICE_RESET.</summary>
public sealed record VfioReset;
/// <summary>A power-state change (D3hot entry zaps).</summary>
public sealed record VfioSetPower(PciPowerState State);
public sealed record VfioResult(Errno Errno);
/// <summary>Read the device's state (tests, explain).</summary>
public sealed record VfioGetState;

// ---- mm -> VFIO ----
/// <summary>The mm faults on a VFIO BAR mapping without a PTE: the driver's vm_ops->fault.</summary>
public sealed record VfioMmapFault(ulong VmaStart, ulong VmaEnd, ulong Hva);

// ---- VFIO / VMM -> mm ----
public sealed record MmRegisterDevice(string Name, IActorRef Vfio);
/// <summary>Install a VMA the driver's mmap prepared (MAP_FIXED when FixedHva is set).</summary>
public sealed record MmInstallVma(ulong? FixedHva, VmaTemplate Template);
/// <summary>A private anonymous mapping (guest RAM).</summary>
public sealed record MmMapRam(ulong Length, ulong? FixedHva);
public sealed record MmMunmap(ulong Addr, ulong Length);
public sealed record MmMprotect(ulong Addr, ulong Length, Prot Prot);
/// <summary>unmap_mapping_range over the device's BAR file ranges.</summary>
public sealed record MmZapMappingRange(string Device, int[] Regions);
public sealed record MmResult(Errno Errno, ulong Hva = 0);
/// <summary>KVM subscribes to the MMU notifier (mmu_notifier_register).</summary>
public sealed record MmSubscribeNotifier(string Vm, IActorRef Kvm);
public sealed record MmGetVmas(ulong Start, ulong End);
/// <summary>Read the whole address space (tests, explain).</summary>
public sealed record MmGetState;
public sealed record MmVmas(Vma[] Vmas);
/// <summary>KVM resolves the pfns of a batch of faults in one round trip (hva_to_pfn for each).</summary>
public sealed record MmFaultInPfnBatch(long BatchId, FaultStart[] Faults);
public sealed record MmPfnBatchAnswer(long BatchId, MmPfnAnswer[] Answers);

// ---- mm -> KVM: the MMU notifier ----
public sealed record MmuInvalidateRangeStart(long Id, ulong Start, ulong End);
public sealed record MmuInvalidateRangeEnd(long Id, ulong Start, ulong End);
/// <summary>KVM has unmapped the range: the mm may change the PTEs.</summary>
public sealed record MmuInvalidateAck(long Id, string Vm);

// ---- VMM -> KVM ----
/// <summary>KVM_SET_USER_MEMORY_REGION (size 0 deletes).</summary>
public sealed record KvmSetMemslot(int Slot, MemslotFlags Flags, ulong Gpa, ulong Size, ulong Hva);
public sealed record KvmResult(Errno Errno);
/// <summary>A vgic-v2's CPU interface at <paramref name="CpuBase"/> (KVM_DEV_ARM_VGIC_GRP_ADDR), mapped at the
/// first KVM_RUN: KvmVmDecider.VgicV2MapResources. Answered with <see cref="KvmResult"/>.</summary>
public sealed record KvmVgicV2MapResources(ulong CpuBase);
/// <summary>Read the leaf that maps gpa (for expectations and explain).</summary>
public sealed record KvmGetLeaf(ulong Gpa);
public sealed record KvmLeaf(Stage2Leaf? Leaf);
public sealed record KvmGetState;

// ---- vCPU -> batcher -> KVM ----
/// <summary>A guest access that may fault at stage 2; <paramref name="Syndrome"/>: the abort's syndrome
/// bits beside the op (no valid syndrome, a stage-1 walk, cache maintenance).</summary>
public sealed record GuestAbort(long Id, int Vcpu, ulong Gpa, AccessOp Op, IActorRef ReplyTo, AbortSyndrome Syndrome = AbortSyndrome.None);
/// <summary>The batcher's inbox is full: try again later (back-pressure).</summary>
public sealed record GuestAbortRejected(long Id);
public sealed record GuestAbortCompleted(long Id, AccessResult Result);
public sealed record KvmFaultBatch(long BatchId, GuestAbort[] Aborts);
public sealed record KvmFaultBatchResult(long BatchId, AccessResult[] Results);

// ---- driver -> vCPU ----
/// <summary>Run one guest access on this vCPU; the reply is <see cref="VcpuAccessDone"/>.
/// <paramref name="Syndrome"/>: the abort's syndrome bits beside the op (<see cref="AbortSyndrome"/>).</summary>
public sealed record VcpuRunAccess(ulong Gpa, AccessOp Op, AbortSyndrome Syndrome = AbortSyndrome.None);
public sealed record VcpuAccessDone(ulong Gpa, AccessOp Op, AccessResult Result);

/// <summary>Run <paramref name="Count"/> guest accesses on this vCPU, at <paramref name="Gpa"/> and every
/// <paramref name="Stride"/> bytes after it, each as soon as the last one's fault is answered, until
/// all ran or <paramref name="Until"/> (UTC) has passed; the reply is <see cref="VcpuSequenceDone"/>.
/// Each access's decision is an event like any other (journal, EventStream).</summary>
public sealed record VcpuRunSequence(ulong Gpa, ulong Stride, long Count, AccessOp Op, DateTime? Until = null);

/// <param name="Accesses">How many ran.</param>
/// <param name="Latency">Each access's time from its guest abort to its answer, in
/// <see cref="System.Diagnostics.Stopwatch"/> ticks, counted in a histogram of fixed size (three
/// significant digits, up to <see cref="VcpuSequenceDone.MaxLatencyTicks"/>, longer ones counted there), so
/// a sequence of any length costs the same memory. Handed over: the vCPU records nothing into it
/// once it is sent.</param>
public sealed record VcpuSequenceDone(long Accesses, HdrHistogram.LongHistogram Latency)
{
    /// <summary>The longest latency the histogram tells apart: ten minutes.</summary>
    public static readonly long MaxLatencyTicks = HdrHistogram.TimeStamp.Minutes(10);

    public static HdrHistogram.LongHistogram NewLatencyHistogram() => new(MaxLatencyTicks, 3);
}

// ---- invariant checker ----
public sealed record InvariantViolated(long Seq, string Stream, Domain.Invariants.Violation Violation);
public sealed record GetViolations;
/// <summary>Fold events already in the journal into the checker's replica without checking them
/// (a resumed run).</summary>
public sealed record CheckerWarmUp(DomainEventPublished[] Events);
public sealed record Violations(InvariantViolated[] Items, long EventsChecked);
