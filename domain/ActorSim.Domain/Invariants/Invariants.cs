using System.Collections.Immutable;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Stage2;
using ActorSim.Domain.Vfio;

namespace ActorSim.Domain.Invariants;

/// <summary>What the invariants look at: the whole simulated host.</summary>
public sealed record SystemView(
    KernelPolicy Policy, AddressSpace Mm, IReadOnlyDictionary<string, VfioDevice> Devices, IReadOnlyDictionary<string, KvmVm> Vms);

/// <summary>A broken invariant: which one (I1..I13 of kernel-model.md §7) and what broke it.</summary>
public sealed record Violation(string Invariant, string Detail)
{
    public override string ToString() => $"{Invariant}: {Detail}";
}

/// <summary>The §7 invariants as predicates over state (<see cref="CheckState"/>) and over single
/// events (<see cref="CheckEvent"/>).</summary>
public static class Invariants
{
    public static IReadOnlyList<Violation> CheckState(SystemView v)
    {
        var found = new List<Violation>();
        foreach (var vm in v.Vms.Values)
            foreach (var leaf in vm.Stage2.Leaves)
                CheckLeaf(v, vm, leaf, found);
        CheckVmaFlags(v, found);
        return found;
    }

    /// <summary>I12: the flag is VM_NONE on 32-bit.</summary>
    public static void CheckVmaFlags(SystemView v, List<Violation> found)
    {
        if (v.Policy.WordSize == WordSize.Bits32)
            foreach (var vma in v.Mm.Vmas.Where(x => ((ulong)x.Flags & (1UL << 39)) != 0))
                found.Add(new("I12", $"VMA 0x{vma.Start:x} has bit 39 on a 32-bit kernel"));
    }

    /// <summary>The state predicates after a change to user mappings of [start, end) (munmap, mprotect,
    /// zapped PTEs): what <see cref="CheckState"/> finds there, from only the leaves that can see it — in
    /// each VM, those overlapping the IPA range of each memslot over that user range (a leaf's I4 and I11
    /// look at the user mapping of its own first page through its memslot; nothing outside the range
    /// changed) — instead of every leaf of every VM, whose number only grows in a long run.</summary>
    public static void CheckUserRange(SystemView v, ulong start, ulong end, List<Violation> found)
    {
        foreach (var vm in v.Vms.Values)
            foreach (var (_, slot) in vm.Memslots)
            {
                if (!slot.OverlapsHva(start, end)) continue;
                var from = slot.BaseGpa + (Math.Max(start, slot.UserspaceAddr) - slot.UserspaceAddr);
                var to = slot.BaseGpa + (Math.Min(end, slot.UserspaceAddr + slot.Size) - slot.UserspaceAddr);
                foreach (var leaf in vm.Stage2.LeavesIn(from, to)) CheckLeaf(v, vm, leaf, found);
            }
        CheckVmaFlags(v, found);
    }

    /// <summary>Can this event break a state predicate of a leaf it did not install? Only changes that
    /// take something away from a mapping can: unmapping, downgrading or zapping user PTEs, a device that
    /// stops decoding, a memslot deleted or moved. (Adding PTEs, VMAs or leaves, and removing leaves,
    /// cannot.) A checker re-checks every leaf after these, and only the new leaf after a fault.</summary>
    public static bool NeedsFullCheck(IDomainEvent e) => e is VmaRangeUnmapped or VmaProtectionChanged or UserPtesZapped
        or VfioMemoryToggled { Enabled: false } or VfioPowerStateChanged or MemslotDeleted or MemslotSet { Change: MemslotChange.Move or MemslotChange.FlagsOnly };

    /// <summary>The state predicates of one leaf (I1–I4, I6, I9–I11).</summary>
    public static void CheckLeaf(SystemView v, KvmVm vm, Stage2Leaf leaf, List<Violation> found)
    {
        var fwb = v.Policy.Cpu.Fwb;
        // Formatted only for a violation: the checks run on every leaf a fault installs.
        string Where() => $"vm {vm.Name} gpa 0x{leaf.Gpa:x} L{leaf.Level}";
        var type = MemAttr.TypeOf(leaf.MemAttr, fwb);
        // I3: exactly one memory type, one that KVM produces.
        if (type is null) { found.Add(new("I3", $"{Where()}: MemAttr 0x{leaf.MemAttr:x} is not a KVM stage-2 type")); return; }
        // I1: Device / Normal-NC leaves are never executable.
        if (type != S2Type.Normal && leaf.Executable) found.Add(new("I1", $"{Where()}: {type} leaf is executable"));
        var devicePfn = !PhysMap.PfnIsMapMemory(leaf.Pfn);
        // I10 (6.8/6.9): device pfns map Device or Normal-NC, RAM maps Normal.
        if (v.Policy.RuleSet != RuleSet.V6_17 && devicePfn != (type != S2Type.Normal))
            found.Add(new("I10", $"{Where()}: pfn 0x{leaf.Pfn:x} ({(devicePfn ? "device" : "RAM")}) mapped {type}"));
        // I9 (6.17): cacheable device memory only with FWB and DIC.
        if (type == S2Type.Normal && devicePfn && !(v.Policy.RuleSet == RuleSet.V6_17 && v.Policy.SupportsCacheablePfnmap))
            found.Add(new("I9", $"{Where()}: device pfn 0x{leaf.Pfn:x} mapped cacheable under {v.Policy}"));
        // I6: no device memory mapped while its device does not decode memory.
        if (DeviceOf(v, leaf.Pfn) is { } dev && dev.Driver != VfioDriver.VfioPlatform && !dev.MemoryDecodes)
            found.Add(new("I6", $"{Where()}: maps {dev.Name} while its memory is disabled"));

        // A leaf KVM mapped itself (kvm_phys_addr_ioremap: the GICv2 CPU interface) comes from no user mapping
        // or memslot, so I4 and I11 do not apply to it; it is Device, never Normal-NC (I2: no VMA, no flag).
        if (vm.IoRemapOf(leaf.Gpa) is { } io)
        {
            if (type == S2Type.NormalNC) found.Add(new("I2", $"{Where()}: Normal-NC in KVM's own mapping of 0x{io.Pa:x}, which has no VMA"));
            return;
        }
        var slot = vm.SlotFor(leaf.Gpa);
        if (slot is null || !slot.ContainsGpa(leaf.EndGpa - 1))
        {
            found.Add(new("I4", $"{Where()}: no memslot holds the whole leaf"));
            return;
        }
        var hva = slot.GpaToHva(leaf.Gpa);
        var vma = v.Mm.VmaLookup(hva);
        // I4: the user mapping the leaf came from is still there: the VMA at the block's first
        // page, and its PTE pointing at the same pfn. (Not the whole block: get_vma_page_shift
        // tests ALIGN(hva, size) <= vm_end, which an already aligned hva passes, so the kernel
        // can map a block that runs past vm_end.)
        if (vma is null)
            found.Add(new("I4", $"{Where()}: no VMA at hva 0x{hva:x}"));
        else if (!vma.Ptes.Contains(hva) || vma.PfnOf(hva) != leaf.Pfn)
            found.Add(new("I4", $"{Where()}: user PTE at hva 0x{hva:x} is gone or points elsewhere"));
        else
        {
            // I2: a Normal-NC leaf comes from a VMA with VM_ALLOW_ANY_UNCACHED over device memory.
            if (type == S2Type.NormalNC && (!vma.Flags.Has(VmFlags.VM_ALLOW_ANY_UNCACHED) || !devicePfn || v.Policy.RuleSet == RuleSet.V6_8))
                found.Add(new("I2", $"{Where()}: Normal-NC without VM_ALLOW_ANY_UNCACHED on a device pfn"));
            // I11: writable leaf => writable user mapping and writable slot.
            if (leaf.Writable && (!vma.PteWritable || slot.ReadOnly))
                found.Add(new("I11", $"{Where()}: writable leaf over a read-only mapping or slot"));
        }
    }

    public static IReadOnlyList<Violation> CheckEvent(IDomainEvent e)
    {
        switch (e)
        {
            case Stage2FaultResolved { Decision: var d }:
            {
                List<Violation>? found = null;
                CheckDecision(d, ref found);
                return found ?? [];
            }
            case Stage2FaultsResolved b:
            {
                List<Violation>? found = null;
                foreach (var d in b.Decisions) CheckDecision(d, ref found);
                return found ?? [];
            }
            case MemslotSet m when m.Slot.Flags.HasFlag(MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES) && m.Vmas.Any(x => x.Flags.Has(VmFlags.VM_PFNMAP)):
                // I8: PFNMAP memslots never have dirty logging.
                return [new("I8", $"vm {m.Vm} slot {m.Slot.Id}: dirty logging over a VM_PFNMAP VMA")];
            default:
                return [];
        }
    }

    /// <summary>The predicates of one decision record (I1, I2, I5, I7, I11, I13), adding what they find
    /// to <paramref name="found"/> (made at the first violation: most decisions have none).</summary>
    private static void CheckDecision(DecisionRecord d, ref List<Violation>? found)
    {
        var o = d.Outcome;
        var i = d.Inputs;
        string At() => $"vm {i.Vm} vcpu {i.Vcpu} gpa 0x{i.Gpa:x}";
        // I13: -ENOEXEC and -EAGAIN never reach the VMM.
        if (o.Result == FaultResult.Error && o.Errno is Errno.ENOEXEC or Errno.EAGAIN)
            (found ??= []).Add(new("I13", $"{At()}: -{o.Errno} returned to the VMM"));
        if (o.Result is FaultResult.Mapped or FaultResult.PermissionsRelaxed)
        {
            // I5: installed only if no invalidation ran since the sample.
            if (i.InProgressAtLock != 0 || i.SeqAtLock != i.SampledSeq)
                (found ??= []).Add(new("I5", $"{At()}: installed with seq {i.SampledSeq}->{i.SeqAtLock}, in progress {i.InProgressAtLock}"));
            var leaf = o.Leaf!.Value;
            var type = MemAttr.TypeOf(leaf.MemAttr, i.Policy.Cpu.Fwb);
            if (type is not S2Type.Normal && leaf.Executable)
                (found ??= []).Add(new("I1", $"{At()}: {type} leaf installed executable"));
            if (type == S2Type.NormalNC && (i.Vma is not { } vma || !vma.Flags.Has(VmFlags.VM_ALLOW_ANY_UNCACHED) || i.Pfn.IsMapMemory || i.Policy.RuleSet == RuleSet.V6_8))
                (found ??= []).Add(new("I2", $"{At()}: Normal-NC decided without VM_ALLOW_ANY_UNCACHED on a device pfn"));
            // I7: a permission relax never changes the memory type.
            if (o.Result == FaultResult.PermissionsRelaxed && i.ExistingLeaf is { } old && old.MemAttr != leaf.MemAttr)
                (found ??= []).Add(new("I7", $"{At()}: relax changed MemAttr 0x{old.MemAttr:x} -> 0x{leaf.MemAttr:x}"));
            // I11: no write permission from a read fault while dirty logging (RAM).
            if (i.Slot is { LoggingActive: true } && !KvmEmulate.IsWriteFault(i) && leaf.Writable && i.Pfn.IsMapMemory && o.Result == FaultResult.Mapped)
                (found ??= []).Add(new("I11", $"{At()}: read fault under dirty logging mapped writable"));
        }
    }

    private static VfioDevice? DeviceOf(SystemView v, ulong pfn)
    {
        var pa = pfn << PageGeometry.PageShift;
        foreach (var d in v.Devices.Values)
            foreach (var r in d.Regions)
                if (r.Size > 0 && pa >= r.PhysStart && pa < r.PhysStart + PageGeometry.PageAlign(r.Size)) return d;
        return null;
    }
}
