//! The fix workflow of a group (Log Center's 错误状态流转): which stage a group is in and which
//! moves between stages are allowed. `Deployed` resolves the group; a new event after that
//! puts it back to `New` (done by the ingest writer, not through a transition).

use crate::error::Error;

/// A stage of the fix workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkflowStage {
    New,
    Verifying,
    CannotReproduce,
    PendingFix,
    Fixing,
    Fixed,
    Verified,
    Deployed,
    FixFailed,
}

impl WorkflowStage {
    pub const ALL: [WorkflowStage; 9] = [
        WorkflowStage::New,
        WorkflowStage::Verifying,
        WorkflowStage::CannotReproduce,
        WorkflowStage::PendingFix,
        WorkflowStage::Fixing,
        WorkflowStage::Fixed,
        WorkflowStage::Verified,
        WorkflowStage::Deployed,
        WorkflowStage::FixFailed,
    ];

    /// The stored and documented name, e.g. `PENDING_FIX`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStage::New => "NEW",
            WorkflowStage::Verifying => "VERIFYING",
            WorkflowStage::CannotReproduce => "CANNOT_REPRODUCE",
            WorkflowStage::PendingFix => "PENDING_FIX",
            WorkflowStage::Fixing => "FIXING",
            WorkflowStage::Fixed => "FIXED",
            WorkflowStage::Verified => "VERIFIED",
            WorkflowStage::Deployed => "DEPLOYED",
            WorkflowStage::FixFailed => "FIX_FAILED",
        }
    }

    /// Case-insensitive; `-` and spaces count as `_`.
    pub fn parse(s: &str) -> Option<WorkflowStage> {
        let norm = s.trim().to_ascii_uppercase().replace(['-', ' '], "_");
        Self::ALL.into_iter().find(|st| st.as_str() == norm)
    }

    /// The stages this one may move to: the documented chain
    /// NEW → VERIFYING → PENDING_FIX → FIXING → FIXED → VERIFIED → DEPLOYED, with
    /// CANNOT_REPRODUCE from VERIFYING and FIX_FAILED from FIXING or FIXED. Nothing else.
    pub fn next(self) -> &'static [WorkflowStage] {
        use WorkflowStage::*;
        match self {
            New => &[Verifying],
            Verifying => &[PendingFix, CannotReproduce],
            PendingFix => &[Fixing],
            Fixing => &[Fixed, FixFailed],
            Fixed => &[Verified, FixFailed],
            Verified => &[Deployed],
            Deployed | CannotReproduce | FixFailed => &[],
        }
    }

    /// Checks a move; a move that is not documented is a conflict with the group's state.
    pub fn check_transition(self, to: WorkflowStage) -> Result<(), Error> {
        if self.next().contains(&to) {
            return Ok(());
        }
        let allowed: Vec<&str> = self.next().iter().map(|s| s.as_str()).collect();
        Err(Error::Conflict(format!(
            "cannot move from {} to {}; allowed from {}: {}",
            self.as_str(),
            to.as_str(),
            self.as_str(),
            if allowed.is_empty() {
                "none".to_owned()
            } else {
                allowed.join(", ")
            }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::WorkflowStage::{self, *};

    #[test]
    fn documented_chain_and_branches_only() {
        let chain = [
            New, Verifying, PendingFix, Fixing, Fixed, Verified, Deployed,
        ];
        for w in chain.windows(2) {
            assert!(
                w[0].check_transition(w[1]).is_ok(),
                "{:?} → {:?}",
                w[0],
                w[1]
            );
        }
        assert!(Verifying.check_transition(CannotReproduce).is_ok());
        assert!(Fixing.check_transition(FixFailed).is_ok());
        assert!(Fixed.check_transition(FixFailed).is_ok());
        assert!(New.check_transition(Deployed).is_err());
        assert!(Deployed.check_transition(New).is_err());
        assert!(PendingFix.check_transition(FixFailed).is_err());
        assert!(New.check_transition(New).is_err());
    }

    #[test]
    fn parse_round_trips() {
        for st in WorkflowStage::ALL {
            assert_eq!(WorkflowStage::parse(st.as_str()), Some(st));
        }
        assert_eq!(WorkflowStage::parse("pending-fix"), Some(PendingFix));
        assert_eq!(WorkflowStage::parse("DONE"), None);
    }
}
