import { lazy, Suspense } from 'react';
import { Link, Route, Routes } from 'react-router';
import { useTranslation } from 'react-i18next';
import { LangSwitch } from './components/LangSwitch';
import { BeerLoader } from './components/BeerLoader';

const CreatePage = lazy(() => import('./pages/CreatePage'));
const MeetupPage = lazy(() => import('./pages/MeetupPage'));

function NotFound() {
  const { t } = useTranslation();
  return (
    <div className="card center">
      <p className="big-emoji" aria-hidden="true">🍺❓</p>
      <p>{t('app.notFound')}</p>
      <Link className="btn" to="/">
        {t('app.home')}
      </Link>
    </div>
  );
}

export function App() {
  const { t } = useTranslation();
  return (
    <>
      <a className="skip" href="#main">
        {t('app.skip')}
      </a>
      <header className="topbar">
        <Link to="/" className="brand">
          <span aria-hidden="true">🍺</span> {t('app.name')}
        </Link>
        <LangSwitch />
      </header>
      <main id="main" className="page">
        <Suspense fallback={<BeerLoader />}>
          <Routes>
            <Route path="/" element={<CreatePage />} />
            <Route path="/m/:id" element={<MeetupPage />} />
            <Route path="*" element={<NotFound />} />
          </Routes>
        </Suspense>
      </main>
      <footer className="footer">{t('app.footer')}</footer>
    </>
  );
}
