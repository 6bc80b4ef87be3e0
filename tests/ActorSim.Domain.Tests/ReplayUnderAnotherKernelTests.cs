using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Vfio;
using static ActorSim.Domain.Tests.TestHosts;

namespace ActorSim.Domain.Tests;

/// <summary>Replay re-deciding a run under another kernel (`replay --kernel K`): each decision's VMA as that
/// kernel's driver would have made it. VM_ALLOW_ANY_UNCACHED is VFIO's choice at mmap from v6.9, so a 6.8
/// run's BARs lack it; re-decided as recorded, `replay --kernel 6.9` of a 6.8 run said nothing changes.</summary>
public class ReplayUnderAnotherKernelTests
{
    private const ulong Size = 2 * MiB;

    /// <summary>The pages, in the order mapped: RAM, a vfio-pci BAR, a vfio-platform region, nvgrace-gpu
    /// USEMEM and RESMEM, each in a memslot of its own, read once by the guest.</summary>
    private static readonly string[] Pages = ["ram", "bar", "platform", "usemem", "resmem"];

    private static ulong GpaOf(string page) => 0x80_0000_0000UL + (ulong)Array.IndexOf(Pages, page) * Size;

    private static SyncKernel World(string kernel)
    {
        var k = new SyncKernel(Policy(kernel));
        k.AddVm(KvmVm.Create("vm1"));
        k.AddDevice(Gpu());
        k.AddDevice(Platform());
        k.AddDevice(Nvgrace());
        foreach (var page in Pages)
        {
            ulong hva;
            var err = page switch
            {
                "ram" => k.MmapRam(Size, null, out hva),
                "bar" => k.MmapDevice("gpu0", 0, 0, Size, true, Prot.Read | Prot.Write, null, out hva),
                "platform" => k.MmapDevice("plat0", 0, 0, 64 * 1024, true, Prot.Read | Prot.Write, null, out hva),
                "usemem" => k.MmapDevice("gh0", VfioRegionIndex.NvgraceUsemem, 0, Size, true, Prot.Read | Prot.Write, null, out hva),
                _ => k.MmapDevice("gh0", VfioRegionIndex.NvgraceResmem, 0, Size, true, Prot.Read | Prot.Write, null, out hva),
            };
            Assert.Equal(Errno.None, err);
            Assert.Equal(Errno.None, k.SetMemslot("vm1", Array.IndexOf(Pages, page), MemslotFlags.None, GpaOf(page), page == "platform" ? 64 * 1024 : Size, hva));
            Assert.Equal(FaultResult.Mapped, k.Access("vm1", 0, GpaOf(page), AccessOp.Read).Outcome.Result);
        }
        return k;
    }

    /// <summary>Each change of the run's <paramref name="log"/> under <paramref name="kernel"/> (the run's CPU
    /// features, or <paramref name="fwb"/>) as "page Op: before -> after", in order. With the run's policy,
    /// <paramref name="recorded"/>, its memslots are decided again.</summary>
    private static List<string> Changes(IEnumerable<LoggedEvent> log, string kernel, bool? fwb = null, KernelPolicy? recorded = null)
    {
        var r = new Replay(p => KernelPolicy.Of(kernel, fwb ?? p.Cpu.Fwb, p.Cpu.Dic), recorded);
        foreach (var e in log) r.Apply(e.Seq, e.Stream, e.Event);
        Assert.Equal(0, r.Mismatches);
        return [.. r.Changes.Select(c => $"{Pages[(int)((c.Gpa - GpaOf("ram")) / Size)]} {c.Op}{(c.Nisv ? " nisv" : "")}{((c.Syndrome & AbortSyndrome.S1ptw) != 0 ? " s1ptw" : "")}: {c.Before} -> {c.After}")];
    }

    private static IReadOnlyList<ReplayMemslotRefused> Refused(SyncKernel k, KernelPolicy other)
    {
        var r = new Replay(_ => other, k.Policy);
        foreach (var e in k.Log) r.Apply(e.Seq, e.Stream, e.Event);
        return r.MemslotsRefused;
    }

    [Theory]
    [InlineData("6.17", false, true)]
    [InlineData("6.17", true, false)]
    [InlineData("6.8", false, true)]
    [InlineData("6.9", true, false)]
    public void Under_6_17_without_FWB_or_DIC_the_memslot_over_USEMEM_is_refused(string recorded, bool fwb, bool dic)
    {
        // kvm_arch_prepare_memory_region (2a8dfab26677, v6.17): a cacheable PFNMAP VMA needs FWB and DIC.
        var k = World(recorded);
        var refused = Assert.Single(Refused(k, KernelPolicy.Of("6.17", fwb, dic)));
        Assert.Equal(("vm1", Array.IndexOf(Pages, "usemem"), GpaOf("usemem"), Size, Errno.EINVAL), (refused.Vm, refused.Slot, refused.Gpa, refused.Size, refused.Errno));
        Assert.Equal(k.Log.Single(e => e.Event is MemslotSet m && m.Slot.Id == refused.Slot).Seq, refused.Seq);
    }

    [Fact]
    public void Memslots_are_refused_only_by_the_policy_and_only_when_the_recorded_one_is_known()
    {
        Assert.Empty(Refused(World("6.17"), KernelPolicy.Of("6.17")));
        Assert.Empty(Refused(World("6.17"), KernelPolicy.Of("6.9", fwb: false, dic: false)));
        var k = World("6.17");
        var r = new Replay(_ => KernelPolicy.Of("6.17", fwb: false)); // no recorded policy: memslots not decided again
        foreach (var e in k.Log) r.Apply(e.Seq, e.Stream, e.Event);
        Assert.Empty(r.MemslotsRefused);
        Assert.NotEmpty(r.Changes);
    }

    [Fact]
    public void A_memslot_the_replay_cannot_decide_as_the_run_did_is_not_reported()
    {
        // The fold knows a VM from its events alone, not its IPA size: a slot above 40 bits in a 44-bit VM is
        // refused by the fold's VM under either policy (-EFAULT), which is not the policy's doing.
        var k = new SyncKernel(Policy("6.17"));
        k.AddVm(KvmVm.Create("vm1", ipaBits: 44));
        Assert.Equal(Errno.None, k.MmapRam(Size, null, out var hva));
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 0, MemslotFlags.None, 1UL << 42, Size, hva));
        Assert.Empty(Refused(k, KernelPolicy.Of("6.17", fwb: false)));
    }

    /// <summary>Under 6.17 without FWB the memslot over USEMEM is refused, so the guest's accesses there find
    /// no memslot (kvm_handle_guest_abort): a data abort exits to the VMM as MMIO, an exec is an injected
    /// abort. Re-decided in the memslot the other kernel refused, they were user_mem_abort's -EFAULT for a
    /// cacheable PFNMAP without FWB, which no fault reaches there. Set again over USEMEM, the slot is refused
    /// again; set again over RAM (accepted), its faults find it again.</summary>
    [Fact]
    public void The_faults_in_a_memslot_the_other_kernel_refuses_find_no_memslot()
    {
        var k = World("6.17");
        var slot = k.Vm("vm1").Memslots[Array.IndexOf(Pages, "usemem")];
        void SetAgain(ulong hva, AccessOp op)
        {
            Assert.Equal(Errno.None, k.DeleteMemslot("vm1", slot.Id));
            Assert.Equal(Errno.None, k.SetMemslot("vm1", slot.Id, MemslotFlags.None, slot.BaseGpa, slot.Size, hva));
            Assert.Equal(FaultResult.Mapped, k.Access("vm1", 1, GpaOf("usemem"), op).Outcome.Result);
        }
        SetAgain(slot.UserspaceAddr, AccessOp.Exec);
        Assert.Equal(Errno.None, k.MmapRam(Size, null, out var ram));
        SetAgain(ram, AccessOp.Write);
        var other = KernelPolicy.Of("6.17", fwb: false);
        Assert.Equal(
            ["usemem Read: Mapped Normal-WB -> MmioExit", "usemem Exec: Mapped Normal-WB -> GuestAbort ENOEXEC"],
            Changes(k.Log, "6.17", fwb: false, recorded: k.Policy));
        Assert.Equal(2, Refused(k, other).Count);
        // Without the run's policy its memslots are not decided again: the faults are decided in the slot.
        Assert.Equal(
            ["usemem Read: Mapped Normal-WB -> Error EFAULT", "usemem Exec: Mapped Normal-WB -> Error EFAULT"],
            Changes(k.Log, "6.17", fwb: false));
    }

    /// <summary>A store without a valid syndrome maps USEMEM as any store under 6.17 with FWB (user_mem_abort
    /// does not read the syndrome); without FWB the slot is refused, and with no memslot io_mem_abort cannot
    /// emulate it: -ENOSYS where a plain store would exit to the VMM.</summary>
    [Fact]
    public void A_store_without_a_valid_syndrome_in_a_refused_memslot_is_ENOSYS()
    {
        var k = World("6.17");
        var slot = k.Vm("vm1").Memslots[Array.IndexOf(Pages, "usemem")];
        foreach (var nisv in new[] { true, false })
        {
            // Set again, so that the store faults (the read mapped the slot's block writable).
            Assert.Equal(Errno.None, k.DeleteMemslot("vm1", slot.Id));
            Assert.Equal(Errno.None, k.SetMemslot("vm1", slot.Id, MemslotFlags.None, slot.BaseGpa, slot.Size, slot.UserspaceAddr));
            Assert.Equal(FaultResult.Mapped, k.Access("vm1", 1, GpaOf("usemem"), AccessOp.Write, syndrome: nisv ? AbortSyndrome.Nisv : AbortSyndrome.None).Outcome.Result);
        }
        Assert.Equal(
            ["usemem Read: Mapped Normal-WB -> MmioExit", "usemem Write nisv: Mapped Normal-WB -> Error ENOSYS", "usemem Write: Mapped Normal-WB -> MmioExit"],
            Changes(k.Log, "6.17", fwb: false, recorded: k.Policy));
    }

    /// <summary>An instruction fetch's stage-1 walk on the BAR is no exec fault: it is mapped, Device-nGnRE
    /// under 6.8 and Normal-NC under 6.9, where the fetch itself is -ENOEXEC under both.</summary>
    [Fact]
    public void A_fetchs_walk_on_a_BAR_is_mapped_and_changes_with_the_kernel_where_the_fetch_does_not()
    {
        var k = World("6.8");
        var slot = k.Vm("vm1").Memslots[Array.IndexOf(Pages, "bar")];
        Assert.Equal(Errno.None, k.DeleteMemslot("vm1", slot.Id)); // flushes the read's mapping
        Assert.Equal(Errno.None, k.SetMemslot("vm1", slot.Id, MemslotFlags.None, slot.BaseGpa, slot.Size, slot.UserspaceAddr));
        Assert.Equal(Errno.ENOEXEC, k.Access("vm1", 1, GpaOf("bar"), AccessOp.Exec).Outcome.Errno);
        Assert.Equal(FaultResult.Mapped, k.Access("vm1", 1, GpaOf("bar"), AccessOp.Exec, syndrome: AbortSyndrome.S1ptw).Outcome.Result);
        Assert.Equal(
            ["bar Read: Mapped Device-nGnRE -> Mapped Normal-NC", "resmem Read: Mapped Device-nGnRE -> Mapped Normal-NC", "bar Exec s1ptw: Mapped Device-nGnRE -> Mapped Normal-NC"],
            Changes(k.Log, "6.9"));
    }

    /// <summary>6.8 → 6.9: the BAR and RESMEM Normal-NC, nothing else; 6.9 → 6.8: Device-nGnRE again;
    /// 6.8 → 6.17: USEMEM cacheable too.</summary>
    [Theory]
    [InlineData("6.8", "6.9", "bar Read: Mapped Device-nGnRE -> Mapped Normal-NC", "resmem Read: Mapped Device-nGnRE -> Mapped Normal-NC")]
    [InlineData("6.9", "6.8", "bar Read: Mapped Normal-NC -> Mapped Device-nGnRE", "resmem Read: Mapped Normal-NC -> Mapped Device-nGnRE")]
    [InlineData("6.8", "6.17", "bar Read: Mapped Device-nGnRE -> Mapped Normal-NC", "usemem Read: Mapped Device-nGnRE -> Mapped Normal-WB",
        "resmem Read: Mapped Device-nGnRE -> Mapped Normal-NC")]
    public void Each_page_is_mapped_as_the_other_kernel_maps_it(string recorded, string other, params string[] expected) =>
        Assert.Equal(expected, Changes(World(recorded).Log, other));

    /// <summary>Each fault meets the leaf the other kernel's own decisions left. 6.9 maps USEMEM Device-nGnRE
    /// and refuses an exec on it (-ENOEXEC); 6.17 with FWB and DIC maps it Normal-WB and executable at the
    /// first read, so the exec does not fault. Re-decided on the run's Device-nGnRE leaf, the exec said
    /// "PermissionsRelaxed Device-nGnRE": an executable device leaf, which no kernel makes.</summary>
    [Fact]
    public void A_6_9_run_under_6_17_finds_USEMEM_executable_where_6_9_refused_the_exec()
    {
        var k = World("6.9");
        var exec = k.Access("vm1", 1, GpaOf("usemem"), AccessOp.Exec).Outcome;
        Assert.Equal((FaultResult.GuestAbort, Errno.ENOEXEC), (exec.Result, exec.Errno));
        Assert.Equal(
            ["usemem Read: Mapped Device-nGnRE -> Mapped Normal-WB", "usemem Exec: GuestAbort ENOEXEC -> AlreadyMapped Normal-WB"],
            Changes(k.Log, "6.17"));
    }

    /// <summary>The run's unmaps (here the memslot's deletion, kvm_arch_flush_shadow_memslot) take the other
    /// kernel's leaves too: the exec after the slot is set again is a translation fault in both.</summary>
    [Fact]
    public void The_other_kernels_leaves_go_where_the_runs_went()
    {
        var k = World("6.9");
        var slot = k.Vm("vm1").Memslots[Array.IndexOf(Pages, "usemem")];
        Assert.Equal(Errno.None, k.DeleteMemslot("vm1", slot.Id));
        Assert.Contains(k.Log, e => e.Event is Stage2RangeUnmapped u && u.Gpa == GpaOf("usemem"));
        Assert.Equal(Errno.None, k.SetMemslot("vm1", slot.Id, MemslotFlags.None, slot.BaseGpa, slot.Size, slot.UserspaceAddr));
        Assert.Equal(Errno.ENOEXEC, k.Access("vm1", 1, GpaOf("usemem"), AccessOp.Exec).Outcome.Errno);
        Assert.Equal(
            ["usemem Read: Mapped Device-nGnRE -> Mapped Normal-WB", "usemem Exec: GuestAbort ENOEXEC -> Mapped Normal-WB"],
            Changes(k.Log, "6.17"));
    }

    /// <summary>Two vCPUs' faults on one page, raced as the actors race them ((a), (b)): vCPU 0's write faults,
    /// vCPU 1's access is decided before vCPU 0 takes mmu_lock. Under dirty logging a read maps the page read-only.
    /// (a) vCPU 0's translation fault finds vCPU 1's read-only leaf: the map walker leaves it (AlreadyMapped,
    /// the guest faults again); (b) vCPU 0's permission fault finds the leaf vCPU 1's write relaxed: relaxed
    /// again; (c) below. Without FWB 6.9 decides alike but encodes a Normal leaf's attribute otherwise, so
    /// every leaf the re-decisions leave differs from the run's; taken as faults on those leaves, (a) would
    /// be a permission fault (relaxed), (b) no fault at all and (c) a translation fault (mapped): changes
    /// where nothing changes.</summary>
    [Fact]
    public void Faults_that_raced_another_vCPU_race_it_under_the_other_policy_too()
    {
        const ulong gpa = 0x80_0000_0000;
        var k = new SyncKernel(Policy("6.9"));
        k.AddVm(KvmVm.Create("vm1"));
        Assert.Equal(Errno.None, k.MmapRam(Size, null, out var hva));
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 0, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES, gpa, Size, hva));
        // The kernel's own events in order, each raced decision where vCPU 0 made it.
        var log = new List<LoggedEvent>();
        var taken = 0;
        void Take()
        {
            foreach (var e in k.Log.Skip(taken)) log.Add(e with { Seq = log.Count + 1 });
            taken = k.Log.Count;
        }
        DecisionRecord Raced(ulong page, Action between)
        {
            var start = KvmFaultPath.Begin(k.Vm("vm1"), 0, page, AccessOp.Write);
            var answer = k.ResolvePfn(start);
            between();
            Take();
            var d = KvmFaultPath.Complete(k.Vm("vm1"), k.Policy, start, answer);
            log.Add(new LoggedEvent(log.Count + 1, SyncKernel.VmStream("vm1"), new Stage2FaultResolved(d)));
            return d;
        }
        void Access(ulong page, AccessOp op, FaultResult result) => Assert.Equal(result, k.Access("vm1", 1, page, op).Outcome.Result);
        var a = Raced(gpa, () => Access(gpa, AccessOp.Read, FaultResult.Mapped));
        Assert.Equal((false, FaultResult.AlreadyMapped), (a.Inputs.FaultIsPerm, a.Outcome.Result));
        Access(gpa + 0x1000, AccessOp.Read, FaultResult.Mapped);
        var b = Raced(gpa + 0x1000, () => Access(gpa + 0x1000, AccessOp.Write, FaultResult.PermissionsRelaxed));
        Assert.Equal((true, FaultResult.PermissionsRelaxed), (b.Inputs.FaultIsPerm, b.Outcome.Result));
        // (c) The memslot deleted under vCPU 0's permission fault (its leaf unmapped, no invalidation): the
        // relax finds no leaf, and the guest faults again. Only a log can hold this one: the KVM actor waits
        // for the faults in flight before a memslot change (as KVM's SRCU does), and the notifier's unmaps
        // come with an invalidation, whose Retry comes first.
        Access(gpa + 0x2000, AccessOp.Read, FaultResult.Mapped);
        var c = Raced(gpa + 0x2000, () => Assert.Equal(Errno.None, k.DeleteMemslot("vm1", 0)));
        Assert.Equal((true, null, FaultResult.Retry), (c.Inputs.FaultIsPerm, c.Inputs.ExistingLeaf, c.Outcome.Result));
        var r = new Replay(p => KernelPolicy.Of("6.9", fwb: !p.Cpu.Fwb, p.Cpu.Dic));
        foreach (var e in log) r.Apply(e.Seq, e.Stream, e.Event);
        Assert.Equal((0, 7), (r.Mismatches, r.Decisions));
        Assert.Empty(r.Changes);
    }

    [Fact]
    public void Which_VMAs_get_the_flag_is_what_each_drivers_mmap_does()
    {
        // SetsAllowAnyUncached, read from what a VMA is, against the mmap functions that made them.
        var nc = World("6.9");
        Assert.Equal(Pages.Length, nc.Mm.Vmas.Length);
        Assert.All(nc.Mm.Vmas, v => Assert.Equal(v.Flags.Has(VmFlags.VM_ALLOW_ANY_UNCACHED), VfioDeviceDecider.SetsAllowAnyUncached(v.Backing.Kind, v.S1)));
        Assert.Equal(2, nc.Mm.Vmas.Count(v => v.Flags.Has(VmFlags.VM_ALLOW_ANY_UNCACHED)));
        Assert.DoesNotContain(World("6.8").Mm.Vmas, v => v.Flags.Has(VmFlags.VM_ALLOW_ANY_UNCACHED));
    }

    [Fact]
    public void A_decision_logged_after_its_VMA_was_unmapped_is_re_decided_as_its_driver_made_it()
    {
        // A fault that raced munmap: its decision is logged after the VMA went (here: moved behind it).
        var k = World("6.8");
        var bar = k.Mm.VmaLookup(k.Vm("vm1").Memslots[Array.IndexOf(Pages, "bar")].UserspaceAddr)!;
        Assert.Equal(Errno.None, k.Munmap(bar.Start, bar.Length));
        var log = k.Log.ToList();
        var decision = log.Single(e => e.Event is Stage2FaultResolved f && f.Decision.Inputs.Gpa == GpaOf("bar"));
        log.Remove(decision);
        log.Add(decision);
        Assert.Null(new Func<AddressSpace>(() => log.Where(e => e.Stream == SyncKernel.MmStream).Aggregate(AddressSpace.Empty(), (m, e) => AddressSpaceDecider.Evolve(m, e.Event)))().VmaLookup(bar.Start));
        Assert.Contains("bar Read: Mapped Device-nGnRE -> Mapped Normal-NC", Changes(log, "6.9"));
    }
}
