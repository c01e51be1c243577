import { DayPicker } from 'react-day-picker';
import { enGB, ru } from 'react-day-picker/locale';
import 'react-day-picker/style.css';

export interface DaysCalendarProps {
  selected: Date[];
  onSelect: (days: Date[]) => void;
  today: Date;
  lang: string;
}

/** The multi-day calendar of the create form (its own chunk: it is the heaviest part). */
export default function DaysCalendar({ selected, onSelect, today, lang }: DaysCalendarProps) {
  return (
    <DayPicker
      mode="multiple"
      selected={selected}
      onSelect={(ds) => onSelect(ds ?? [])}
      disabled={{ before: today }}
      defaultMonth={today}
      weekStartsOn={1}
      locale={lang === 'ru' ? ru : enGB}
    />
  );
}
