import { Link } from 'react-router';
import { usePageTitle } from '../components/common';

export function NotFound() {
  usePageTitle('Not found');
  return (
    <>
      <h1>Page not found</h1>
      <p>
        There is nothing at this address. Go to the <Link to="/catalog">catalog</Link>.
      </p>
    </>
  );
}
