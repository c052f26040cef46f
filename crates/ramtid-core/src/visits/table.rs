//! The compact form in which accepted visits are kept for fitting: about 40 bytes a visit
//! plus its task codes, instead of the CSV text. This is the only part of training whose
//! memory grows with the number of visits.

use crate::slot::Slot;

/// One accepted visit, borrowed from a [`VisitTable`].
#[derive(Debug, Clone, Copy)]
pub struct VisitRow<'a> {
    pub recipient: u32,
    pub unit: u32,
    pub day: i32,
    pub slot: Slot,
    pub staff: u8,
    pub duration: f64,
    /// Catalog indices of the tasks, sorted and without repeats.
    pub tasks: &'a [u16],
    /// One value per catalog context variable.
    pub context: &'a [f32],
}

#[derive(Debug, Clone, Default)]
pub struct VisitTable {
    n_context: usize,
    recipient: Vec<u32>,
    unit: Vec<u32>,
    day: Vec<i32>,
    slot: Vec<u8>,
    staff: Vec<u8>,
    duration: Vec<f32>,
    task_end: Vec<u32>,
    tasks: Vec<u16>,
    context: Vec<f32>,
}

impl VisitTable {
    pub fn new(n_context: usize) -> Self {
        VisitTable {
            n_context,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.recipient.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recipient.is_empty()
    }

    pub fn n_context(&self) -> usize {
        self.n_context
    }

    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        recipient: u32,
        unit: u32,
        day: i32,
        slot: Slot,
        staff: u8,
        duration: f64,
        tasks: &[u16],
        context: &[f64],
    ) {
        debug_assert_eq!(context.len(), self.n_context);
        self.recipient.push(recipient);
        self.unit.push(unit);
        self.day.push(day);
        self.slot.push(slot.index() as u8);
        self.staff.push(staff);
        self.duration.push(duration as f32);
        self.tasks.extend_from_slice(tasks);
        self.task_end.push(self.tasks.len() as u32);
        self.context.extend(context.iter().map(|&x| x as f32));
    }

    pub fn row(&self, i: usize) -> VisitRow<'_> {
        let start = if i == 0 {
            0
        } else {
            self.task_end[i - 1] as usize
        };
        let end = self.task_end[i] as usize;
        VisitRow {
            recipient: self.recipient[i],
            unit: self.unit[i],
            day: self.day[i],
            slot: Slot::ALL[self.slot[i] as usize],
            staff: self.staff[i],
            duration: f64::from(self.duration[i]),
            tasks: &self.tasks[start..end],
            context: &self.context[i * self.n_context..(i + 1) * self.n_context],
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = VisitRow<'_>> + '_ {
        (0..self.len()).map(move |i| self.row(i))
    }

    /// Bytes held, for the training report.
    pub fn heap_bytes(&self) -> usize {
        self.recipient.capacity() * 4
            + self.unit.capacity() * 4
            + self.day.capacity() * 4
            + self.slot.capacity()
            + self.staff.capacity()
            + self.duration.capacity() * 4
            + self.task_end.capacity() * 4
            + self.tasks.capacity() * 2
            + self.context.capacity() * 4
    }

    pub fn shrink_to_fit(&mut self) {
        self.recipient.shrink_to_fit();
        self.unit.shrink_to_fit();
        self.day.shrink_to_fit();
        self.slot.shrink_to_fit();
        self.staff.shrink_to_fit();
        self.duration.shrink_to_fit();
        self.task_end.shrink_to_fit();
        self.tasks.shrink_to_fit();
        self.context.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_as_pushed() {
        let mut t = VisitTable::new(2);
        t.push(1, 0, 10, Slot::Morning, 1, 12.5, &[0, 3], &[1.0, 84.0]);
        t.push(2, 1, 11, Slot::Night, 2, 5.0, &[2], &[0.0, 90.0]);
        assert_eq!(t.len(), 2);
        let r = t.row(1);
        assert_eq!(
            (r.recipient, r.unit, r.day, r.slot, r.staff),
            (2, 1, 11, Slot::Night, 2)
        );
        assert_eq!(r.tasks, &[2]);
        assert_eq!(r.context, &[0.0, 90.0]);
        assert_eq!(t.row(0).tasks, &[0, 3]);
        assert!(t.heap_bytes() > 0);
    }
}
